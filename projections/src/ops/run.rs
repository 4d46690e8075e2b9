//! Running an ops command.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use tidemark::{read_stream_to_end, EventStore, StreamId, StreamVersion};

use super::audit::audit;
use super::change::Asked;
use super::command::Output;
use super::command::{EventsCommand, OpsCommand, ProjectionsCommand, StreamCommand};
use super::registry::ProjectionState;
use super::verify::verify_log;
use super::{Ops, OpsExit};
use crate::error::Result;
use crate::rebuild::RebuildOptions;
use crate::replay::ReplayFrom;
use tidemark::LogDiagnostics;

/// `projections status --json`: one object per projection.
#[derive(Debug, Serialize)]
struct StatusLine<'a> {
    #[serde(flatten)]
    state: &'a ProjectionState,
    log_head: Option<String>,
    /// Events up to the head not taken in yet, whoever holds them.
    lag_events: u64,
    /// The age of the oldest of them, in seconds.
    lag_seconds: f64,
    /// False when the measurement read only part of the log and estimated the rest.
    lag_exact: bool,
    held_back_by: Option<String>,
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    /// Runs `command`, writing results to `out` and errors to `err`.
    pub async fn run(&self, command: &OpsCommand, out: &mut dyn Write, err: &mut dyn Write) -> OpsExit {
        match self.dispatch(command, out, err).await {
            Ok(exit) => exit,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                OpsExit::Failed
            }
        }
    }

    async fn dispatch(&self, command: &OpsCommand, out: &mut dyn Write, err: &mut dyn Write) -> Result<OpsExit> {
        match command {
            OpsCommand::Projections(ProjectionsCommand::List(output)) => {
                for p in &self.projections {
                    emit(out, *output, p.name(), || serde_json::json!({ "projection": p.name() }));
                }
                Ok(OpsExit::Done)
            }
            OpsCommand::Projections(ProjectionsCommand::Status(output)) => self.status(output.json, out).await,
            OpsCommand::Projections(ProjectionsCommand::Audit { name, wait, output }) => {
                self.audit(name, Duration::from_secs(*wait), output.json, out, err).await
            }
            OpsCommand::Projections(ProjectionsCommand::Rebuild {
                name: Some(name),
                yes,
                stream: Some(stream),
                output,
                ..
            }) => self.rebuild_stream(name, stream, Asked { yes: *yes, output: *output }, out, err).await,
            OpsCommand::Projections(ProjectionsCommand::Rebuild {
                name,
                all,
                yes,
                restart,
                batch_size,
                output,
                ..
            }) => {
                let options = RebuildOptions::default().restart(*restart).batch_size(*batch_size);
                let asked = Asked { yes: *yes, output: *output };
                match name {
                    Some(name) if !*all => self.rebuild(name, options, asked, out, err).await,
                    _ => self.rebuild_all(options, asked, out, err).await,
                }
            }
            OpsCommand::Projections(ProjectionsCommand::Pause { name, output }) => {
                self.pause(name, true, *output, out, err).await
            }
            OpsCommand::Projections(ProjectionsCommand::Resume { name, output }) => {
                self.pause(name, false, *output, out, err).await
            }
            OpsCommand::Projections(ProjectionsCommand::Replay { name, from, since, batch_size, yes, output }) => {
                let from = match (from, since) {
                    (_, Some(time)) => ReplayFrom::Since(*time),
                    (from, None) => ReplayFrom::After(from.unwrap_or(tidemark::LogPosition::START)),
                };
                self.replay(name, from, *batch_size, Asked { yes: *yes, output: *output }, out, err).await
            }
            OpsCommand::Projections(ProjectionsCommand::Reset { name, yes, output }) => {
                self.reset(name, Asked { yes: *yes, output: *output }, out, err).await
            }
            OpsCommand::Dlq(dlq) => self.dlq(dlq, out, err).await,
            OpsCommand::Events(EventsCommand::Verify(output)) => self.verify(output.json, out).await,
            OpsCommand::Stream(StreamCommand::Show { id, output }) => self.show(id, output.json, out, err).await,
            OpsCommand::Stream(StreamCommand::Tombstone { id, yes, output }) => {
                self.tombstone(id, Asked { yes: *yes, output: *output }, out, err).await
            }
            OpsCommand::Stream(StreamCommand::Archive { older_than, yes, output }) => {
                self.archive_streams(*older_than, Asked { yes: *yes, output: *output }, out, err).await
            }
            OpsCommand::Relay(relay) => self.relay_command(relay, out, err).await,
            OpsCommand::Migrate(args) => self.migrate(*args, out, err).await,
        }
    }

    async fn status(&self, json: bool, out: &mut dyn Write) -> Result<OpsExit> {
        for p in &self.projections {
            let state = p.state().await?;
            let lag = p.lag().await?;
            let held_back_by = if lag.events > 0 { self.store.held_back_by().await } else { None };
            let line = StatusLine {
                state: &state,
                log_head: lag.head.map(|h| h.to_string()),
                lag_events: lag.events,
                lag_seconds: lag.oldest_age.as_secs_f64(),
                lag_exact: lag.exact,
                held_back_by,
            };
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
                continue;
            }
            let built = state.built_version.map_or_else(|| "not built".to_owned(), |v| format!("built v{v}"));
            let about = if lag.exact { "" } else { "~" };
            let paused = if state.paused { "  paused" } else { "" };
            let _ = writeln!(
                out,
                "{}  v{} ({built}){paused}  lag {about}{} events (oldest {:.1} s)  parked {} ({} rogue)  skipped {}",
                state.name, state.version, lag.events, line.lag_seconds, state.parked, state.rogue, state.skipped
            );
            for part in &state.partitions {
                let _ = writeln!(
                    out,
                    "  partition {:>3}  at {:<16}  {} events",
                    part.partition, part.position, part.events
                );
            }
            if let Some(why) = &line.held_back_by {
                let _ = writeln!(out, "  log held back by {why}");
            }
        }
        Ok(OpsExit::Done)
    }

    async fn audit(
        &self,
        name: &str,
        wait: Duration,
        json: bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        let report = audit(&self.store, projection.as_ref(), wait).await?;
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            let _ = writeln!(
                out,
                "audit {name}: {} streams, {} current ({} parked), {} behind, {} missing, {} ahead",
                report.streams, report.current, report.parked, report.behind, report.missing, report.ahead
            );
            for f in &report.findings {
                let _ = writeln!(out, "  {:<7} {}  applied v{}, store at v{}", f.kind, f.stream_id, f.applied, f.head);
            }
        }
        Ok(if report.has_problems() { OpsExit::Problems } else { OpsExit::Done })
    }

    async fn verify(&self, json: bool, out: &mut dyn Write) -> Result<OpsExit> {
        let report = verify_log(&self.store, &self.verifiers).await?;
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            for f in &report.failures {
                let _ = writeln!(
                    out,
                    "FAILED at {}: {} {}@{} ({} v{}): {}",
                    f.position, f.event_id, f.stream_id, f.stream_version, f.event_type, f.schema_version, f.error
                );
            }
            let _ = writeln!(out, "{} events verified, {} failed", report.events, report.failed);
        }
        Ok(if report.failed == 0 { OpsExit::Done } else { OpsExit::Problems })
    }

    async fn show(&self, id: &str, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> Result<OpsExit> {
        let stream = match StreamId::new(id) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return Ok(OpsExit::Failed);
            }
        };
        let events = read_stream_to_end(&self.store, &stream, StreamVersion(1), 1_000).await?;
        for e in &events {
            let _ = if json {
                let line = serde_json::json!({
                    "stream_version": e.stream_version.0, "position": e.position.to_string(),
                    "event_id": e.event_id.to_string(), "event_type": e.event_type,
                    "schema_version": e.schema_version, "recorded_at": e.recorded_at,
                    "metadata": e.metadata, "payload": e.payload,
                });
                writeln!(out, "{line}")
            } else {
                writeln!(
                    out,
                    "v{:<4} {:<16} {} v{}  {}",
                    e.stream_version.0,
                    e.position.to_string(),
                    e.event_type,
                    e.schema_version,
                    e.payload.get()
                )
            };
        }
        if events.is_empty() {
            let _ = writeln!(err, "stream {stream} has no events: no such stream");
            return Ok(OpsExit::Failed);
        }
        Ok(OpsExit::Done)
    }
}

pub(super) fn unknown(name: &str, err: &mut dyn Write) -> OpsExit {
    let _ = writeln!(err, "no projection named {name:?}");
    OpsExit::Failed
}

/// Writes one result: `text` as a line, or with `--json` the object `json` gives.
pub(super) fn emit(out: &mut dyn Write, output: Output, text: &str, json: impl FnOnce() -> serde_json::Value) {
    let _ = if output.json { writeln!(out, "{}", json()) } else { writeln!(out, "{text}") };
}

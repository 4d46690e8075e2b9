//! The ops commands that change or delete something: rebuild, reset (and `dlq skip`, in
//! dlq.rs, and replay, in control.rs). Each asks for confirmation on a terminal; without one it needs `--yes` and
//! otherwise refuses with [`OpsExit::Refused`].

use std::io::{BufRead, Write};

use serde_json::json;
use tidemark::{EventStore, LogDiagnostics, StreamId};

use super::command::Output;
use super::progress::Reporter;
use super::registry::ProjectionOps;
use super::run::{emit, unknown};
use super::{Ops, OpsExit};
use crate::error::Result;
use crate::rebuild::{RebuildOptions, RebuildOutcome};

/// A destructive command's `--yes` and `--json`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    pub(super) yes: bool,
    pub(super) output: Output,
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    /// Whether to go on: `--yes`, or "y" typed on the terminal.
    pub(super) fn confirm(&self, question: &str, yes: bool, err: &mut dyn Write) -> bool {
        if yes {
            return true;
        }
        if !self.interactive {
            let _ = writeln!(err, "refusing without --yes (no terminal to ask on): {question}");
            return false;
        }
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        let confirmed = matches!(answer.trim(), "y" | "Y" | "yes");
        if !confirmed {
            let _ = writeln!(err, "not confirmed: nothing done");
        }
        confirmed
    }

    pub(super) async fn rebuild(
        &self,
        name: &str,
        options: RebuildOptions,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        if !self.confirm(&format!("rebuild projection {name} from the log?"), asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        rebuild_one(projection.as_ref(), options, asked.output, out).await
    }

    /// `projections rebuild --all`: asks once, then rebuilds each projection in the order
    /// they were mounted, stopping at the first that does not complete.
    pub(super) async fn rebuild_all(
        &self,
        options: RebuildOptions,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        let question = format!("rebuild every projection ({}) from the log?", names.join(", "));
        if !self.confirm(&question, asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        for projection in &self.projections {
            let exit = rebuild_one(projection.as_ref(), options.clone(), asked.output, out).await?;
            if exit != OpsExit::Done {
                let _ = writeln!(err, "stopped at {}: the projections after it were not rebuilt", projection.name());
                return Ok(exit);
            }
        }
        Ok(OpsExit::Done)
    }

    pub(super) async fn rebuild_stream(
        &self,
        name: &str,
        stream: &str,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        let stream = StreamId::new(stream).map_err(tidemark::Error::from)?;
        if !self.confirm(&format!("rebuild the rows of {stream} in projection {name}?"), asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        let applied = projection.rebuild_stream(&stream).await?;
        emit(
            out,
            asked.output,
            &format!("rebuilt {stream} in {name}: {applied} events applied"),
            || json!({ "projection": name, "stream_id": stream.as_str(), "applied": applied }),
        );
        Ok(OpsExit::Done)
    }

    pub(super) async fn reset(
        &self,
        name: &str,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        if !self.confirm(&format!("delete the read model of {name}?"), asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        projection.reset().await?;
        emit(
            out,
            asked.output,
            &format!("reset {name}: it is built from the log at its next start"),
            || json!({ "projection": name, "outcome": "reset" }),
        );
        Ok(OpsExit::Done)
    }
}

/// Rebuilds one projection and reports how it ended.
async fn rebuild_one(
    projection: &dyn ProjectionOps,
    options: RebuildOptions,
    output: Output,
    out: &mut dyn Write,
) -> Result<OpsExit> {
    let name = projection.name();
    let mut reporter = Reporter::new();
    let outcome = projection.rebuild(options, &mut |p| reporter.update(p)).await;
    reporter.finish();
    let (text, value, exit) = match outcome? {
        RebuildOutcome::Completed { events, elapsed } => {
            let rate = events as f64 / elapsed.as_secs_f64().max(1e-9);
            (
                format!("rebuilt {name}: {events} events in {elapsed:.2?} ({rate:.0} events/s)"),
                json!({ "projection": name, "outcome": "completed", "events": events, "seconds": elapsed.as_secs_f64() }),
                OpsExit::Done,
            )
        }
        RebuildOutcome::AlreadyRebuilt => (
            format!("{name} was rebuilt by another instance meanwhile"),
            json!({ "projection": name, "outcome": "already_rebuilt" }),
            OpsExit::Done,
        ),
        RebuildOutcome::Interrupted { at } => (
            format!("rebuild of {name} stopped at {at}; run it again to resume"),
            json!({ "projection": name, "outcome": "interrupted", "at": at.to_string() }),
            OpsExit::Failed,
        ),
    };
    emit(out, output, &text, || value);
    Ok(exit)
}

//! `relay status` and `relay reset`: the relay as the ops commands see it, through
//! [`RelayOps`] (implemented by `tidemark-nats`'s relay with its `cli` feature).

use std::io::Write;

use serde::Serialize;
use serde_json::json;
use tidemark::{EventStore, LogDiagnostics, LogPosition};

use super::change::Asked;
use super::command::{Output, RelayCommand};
use super::registry::OpsFuture;
use super::run::emit;
use super::{Ops, OpsExit};
use crate::error::Result;

/// What `relay status` reports of a relay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RelayState {
    /// The relay's name.
    pub name: String,
    /// The session that leads (holds the relay's lock), described, when one does.
    pub leader: Option<String>,
    /// Relays of the name standing by, when the backend can tell.
    pub standbys: Option<u32>,
    /// The saved checkpoint: the relay publishes the events after it (`"t/s"` in JSON).
    #[serde(serialize_with = "position_text")]
    pub checkpoint: LogPosition,
    /// The head of the readable log, if it has events (`"t/s"` in JSON).
    #[serde(serialize_with = "optional_position_text")]
    pub head: Option<LogPosition>,
    /// Readable events after the checkpoint.
    pub lag_events: u64,
    /// False when `lag_events` stopped at a cap.
    pub lag_exact: bool,
    /// The age of the oldest of them, in seconds.
    pub lag_seconds: f64,
}

fn position_text<Ser: serde::Serializer>(position: &LogPosition, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
    serializer.collect_str(position)
}

fn optional_position_text<Ser: serde::Serializer>(
    position: &Option<LogPosition>,
    serializer: Ser,
) -> Result<Ser::Ok, Ser::Error> {
    match position {
        Some(position) => serializer.collect_str(position),
        None => serializer.serialize_none(),
    }
}

/// What the ops commands can do with a relay; mount one with [`Ops::relay`].
pub trait RelayOps: Send + Sync {
    /// Its state: leader, standbys, checkpoint, head and lag.
    fn relay_state(&self) -> OpsFuture<'_, RelayState>;
    /// Sets its checkpoint to `position`, backwards or forwards.
    fn set_checkpoint(&self, position: LogPosition) -> OpsFuture<'_, ()>;
}

/// `relay status --json`.
#[derive(Debug, Serialize)]
struct StatusLine<'a> {
    #[serde(flatten)]
    state: &'a RelayState,
    held_back_by: Option<String>,
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    pub(super) async fn relay_command(
        &self,
        command: &RelayCommand,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(relay) = &self.relay else {
            let _ = writeln!(err, "no relay is mounted in this application's ops commands");
            return Ok(OpsExit::Failed);
        };
        let state = relay.relay_state().await?;
        match command {
            RelayCommand::Status(output) => {
                let held_back_by = if state.lag_events > 0 { self.store.held_back_by().await } else { None };
                self.relay_status(&StatusLine { state: &state, held_back_by }, *output, out);
                Ok(OpsExit::Done)
            }
            RelayCommand::Reset { to, yes, output } => {
                let asked = Asked { yes: *yes, output: *output };
                self.relay_reset(relay.as_ref(), &state, *to, asked, out, err).await
            }
        }
    }

    fn relay_status(&self, line: &StatusLine<'_>, output: Output, out: &mut dyn Write) {
        if output.json {
            let _ = writeln!(out, "{}", serde_json::to_string(line).unwrap_or_default());
            return;
        }
        let s = line.state;
        let leader = s.leader.as_deref().unwrap_or("none (no relay of this name runs)");
        let standbys = s.standbys.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let head = s.head.map_or_else(|| "empty".to_owned(), |h| h.to_string());
        let about = if s.lag_exact { "" } else { "over " };
        let _ = writeln!(out, "relay {}", s.name);
        let _ = writeln!(out, "  leader      {leader}");
        let _ = writeln!(out, "  standbys    {standbys}");
        let _ = writeln!(out, "  checkpoint  {}  (log head {head})", s.checkpoint);
        let _ = writeln!(out, "  lag         {about}{} events (oldest {:.1} s)", s.lag_events, s.lag_seconds);
        if let Some(why) = &line.held_back_by {
            let _ = writeln!(out, "  log held back by {why}");
        }
    }

    async fn relay_reset(
        &self,
        relay: &dyn RelayOps,
        state: &RelayState,
        to: LogPosition,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let head = state.head.unwrap_or(LogPosition::START);
        if to > head {
            let _ = writeln!(err, "refusing: {to} is ahead of the log's head ({head})");
            return Ok(OpsExit::Failed);
        }
        if let Some(leader) = &state.leader {
            let _ =
                writeln!(err, "refusing while a relay leads ({leader}): stop every relay named {} first", state.name);
            return Ok(OpsExit::Failed);
        }
        let question = format!("move the checkpoint of relay {} from {} to {to}?", state.name, state.checkpoint);
        if !self.confirm(&question, asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        relay.set_checkpoint(to).await?;
        let text = format!("relay {}: checkpoint moved from {} to {to}", state.name, state.checkpoint);
        emit(
            out,
            asked.output,
            &text,
            || json!({ "relay": state.name, "from": state.checkpoint.to_string(), "to": to.to_string() }),
        );
        Ok(OpsExit::Done)
    }
}

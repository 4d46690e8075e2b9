//! `dlq …`: dead letters (events parked or skipped) and rogue messages (messages that
//! were not events of the store).

use std::io::Write;

use serde_json::json;
use tidemark::{EventStore, StreamId};

use super::command::{DlqCommand, Output};
use super::registry::ProjectionOps;
use super::run::{emit, unknown};
use super::{Ops, OpsExit};
use crate::error::Result;
use crate::letters::{DeadLetter, RogueMessage};
use tidemark::LogDiagnostics;

impl<S: EventStore + LogDiagnostics> Ops<S> {
    pub(super) async fn dlq(&self, command: &DlqCommand, out: &mut dyn Write, err: &mut dyn Write) -> Result<OpsExit> {
        match command {
            DlqCommand::List { projection, output } => {
                for p in self.projections.iter().filter(|p| projection.as_deref().is_none_or(|n| n == p.name())) {
                    list(&**p, *output, out).await?;
                }
                Ok(OpsExit::Done)
            }
            DlqCommand::Skip { projection, rogue: true, key, yes, output, .. } => {
                let Some(p) = self.find(projection) else { return Ok(unknown(projection, err)) };
                let which =
                    key.as_deref().map_or("every parked rogue message".to_owned(), |k| format!("rogue message {k}"));
                if !self.confirm(&format!("skip {which} of {projection}?"), *yes, err) {
                    return Ok(OpsExit::Refused);
                }
                let count = p.skip_rogue(key.as_deref()).await?;
                emit(
                    out,
                    *output,
                    &format!("{projection}: skipped {count} rogue messages"),
                    || json!({ "projection": projection, "kind": "rogue", "skipped": count }),
                );
                Ok(OpsExit::Done)
            }
            DlqCommand::Retry { projection, stream, output } => {
                let Some(p) = self.find(projection) else { return Ok(unknown(projection, err)) };
                let stream = StreamId::new(stream.as_str()).map_err(tidemark::Error::from)?;
                let count = p.retry_parked(&stream).await?;
                emit(
                    out,
                    *output,
                    &format!("{projection}: applied {count} parked events of {stream}"),
                    || json!({ "projection": projection, "stream_id": stream.as_str(), "applied": count }),
                );
                Ok(OpsExit::Done)
            }
            DlqCommand::Skip { projection, stream: Some(stream), yes, output, .. } => {
                let Some(p) = self.find(projection) else { return Ok(unknown(projection, err)) };
                let stream = StreamId::new(stream.as_str()).map_err(tidemark::Error::from)?;
                if !self.confirm(&format!("skip the parked events of {stream} in {projection}?"), *yes, err) {
                    return Ok(OpsExit::Refused);
                }
                let count = p.skip_parked(&stream).await?;
                emit(
                    out,
                    *output,
                    &format!("{projection}: skipped {count} parked events of {stream}"),
                    || json!({ "projection": projection, "stream_id": stream.as_str(), "skipped": count }),
                );
                Ok(OpsExit::Done)
            }
            DlqCommand::Skip { stream: None, .. } => {
                let _ = writeln!(err, "name a parked stream, or pass --rogue");
                Ok(OpsExit::Failed)
            }
        }
    }
}

/// Prints one projection's dead letters, then its rogue messages.
async fn list(p: &dyn ProjectionOps, output: Output, out: &mut dyn Write) -> Result<()> {
    for letter in p.dead_letters().await? {
        let _ = if output.json {
            writeln!(out, "{}", letter_json(p.name(), &letter))
        } else {
            writeln!(out, "{}", letter_text(p.name(), &letter))
        };
    }
    for message in p.rogue_messages().await? {
        let _ = if output.json {
            writeln!(out, "{}", rogue_json(p.name(), &message))
        } else {
            writeln!(out, "{}", rogue_text(p.name(), &message))
        };
    }
    Ok(())
}

fn letter_json(projection: &str, letter: &DeadLetter) -> serde_json::Value {
    json!({
        "projection": projection, "kind": "event", "stream_id": letter.stream_id.as_str(),
        "stream_version": letter.stream_version, "event_id": letter.event_id.to_string(),
        "event_type": letter.event_type, "position": letter.position.to_string(),
        "status": letter.status.as_str(), "error": letter.error,
    })
}

fn letter_text(projection: &str, letter: &DeadLetter) -> String {
    let (stream, version, status) = (&letter.stream_id, letter.stream_version, letter.status.as_str());
    format!("{projection}  {stream}@{version}  {}  {status}  {}", letter.event_type, letter.error)
}

fn rogue_json(projection: &str, message: &RogueMessage) -> serde_json::Value {
    json!({
        "projection": projection, "kind": "rogue", "key": message.key, "partition": message.partition,
        "subject": message.subject, "stream_id": message.stream_id.as_ref().map(StreamId::as_str),
        "stream_version": message.stream_version, "event_id": message.event_id.map(|id| id.to_string()),
        "status": message.status.as_str(), "error": message.reason,
    })
}

fn rogue_text(projection: &str, message: &RogueMessage) -> String {
    let subject = if message.subject.is_empty() { "-" } else { message.subject.as_str() };
    format!(
        "{projection}  rogue {}  partition {}  {subject}  {}  {}",
        message.key,
        message.partition,
        message.status.as_str(),
        message.reason
    )
}

//! `stream tombstone ID` and `stream archive --older-than AGE`: deleting a stream, and
//! moving the events of deleted streams into the store's archive through [`ArchiveOps`]
//! (implemented for PostgreSQL by `tidemark-projections-postgres` with its `cli` feature).

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use tidemark::{Error, EventStore, ExpectedVersion, LogDiagnostics, StreamId};

use super::change::Asked;
use super::registry::OpsFuture;
use super::run::emit;
use super::{Ops, OpsExit};
use crate::error::Result;

/// What an archive run moved, as the ops commands report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchivedStreams {
    /// Deleted streams whose events were archived.
    pub streams: u64,
    /// Events moved (tombstones stay with the live events).
    pub events: u64,
}

impl ArchivedStreams {
    /// A report of `streams` streams and `events` events.
    pub fn new(streams: u64, events: u64) -> Self {
        Self { streams, events }
    }
}

/// What the ops commands can do with a store's archive; mount one with [`Ops::archive`].
pub trait ArchiveOps: Send + Sync {
    /// Archives the deleted streams whose tombstone is older than `age`.
    fn archive_older_than(&self, age: Duration) -> OpsFuture<'_, ArchivedStreams>;
}

/// Parses an age: a whole number followed by `d` (days), `h`, `m` or `s`, as `90d`.
///
/// # Errors
///
/// A message naming the accepted form.
pub fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{text:?} is not an age: write a whole number and a unit, d, h, m or s (as 90d)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_seconds = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_seconds).map(Duration::from_secs).ok_or_else(bad)
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    /// `stream tombstone ID`.
    pub(super) async fn tombstone(
        &self,
        id: &str,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let stream = match StreamId::new(id) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return Ok(OpsExit::Failed);
            }
        };
        let question = format!("delete stream {stream} for good (no event can be appended to it afterwards)?");
        if !self.confirm(&question, asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        match self.store.tombstone(&stream, ExpectedVersion::Any).await {
            Ok(outcome) => {
                let text = format!("deleted {stream}: tombstone at version {}", outcome.version);
                emit(out, asked.output, &text, || json!({ "stream": id, "tombstone_version": outcome.version.0 }));
                Ok(OpsExit::Done)
            }
            Err(Error::StreamDeleted { version, .. }) => {
                let _ = writeln!(err, "stream {stream} is deleted already (tombstone at version {version})");
                Ok(OpsExit::Failed)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `stream archive --older-than AGE`.
    pub(super) async fn archive_streams(
        &self,
        age: Duration,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(archive) = &self.archive else {
            let _ = writeln!(err, "error: this store has no archive");
            return Ok(OpsExit::Failed);
        };
        let question = format!("move the events of streams deleted more than {}s ago into the archive?", age.as_secs());
        if !self.confirm(&question, asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        let moved = archive.archive_older_than(age).await?;
        let text = format!("archived {} deleted streams, {} events", moved.streams, moved.events);
        emit(out, asked.output, &text, || json!({ "streams": moved.streams, "events": moved.events }));
        Ok(OpsExit::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_a_number_and_a_unit() {
        assert_eq!(parse_age("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        for bad in ["", "d", "90", "90x", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}

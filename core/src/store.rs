//! The `EventStore` trait, implemented by every storage backend.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{NewEvent, RecordedEvent};
use crate::identity::{EventIdentity, Mismatch};
use crate::ids::CommandId;
use crate::stream_id::StreamId;
use crate::version::{ExpectedVersion, LogPosition, StreamVersion};

/// Default largest event a store accepts: payload plus metadata, in bytes (512 KiB).
/// It leaves room for headers under NATS's default 1 MiB message limit.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 512 * 1024;

/// One append: events for one stream, all or nothing.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// What the writer expects the stream's version to be.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// If set, the append is recorded under this command id: a second append with the
    /// same id writes nothing and returns the first one's outcome (`duplicate: true`).
    pub command_id: Option<CommandId>,
}

impl AppendRequest {
    /// An append without a command id.
    pub fn new(stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self { stream_id, expected, events, command_id: None }
    }

    /// Records the append under a command id.
    pub fn with_command_id(mut self, id: CommandId) -> Self {
        self.command_id = Some(id);
        self
    }

    /// Checks every event against the rules every store enforces: the size limit,
    /// event type names (1–128 ASCII letters, digits, `_` or `-`, so a name fits a NATS
    /// subject token; the tombstone's name only for a tombstone alone in its append), schema versions (1 to 2^31 − 1), and no NUL characters (which
    /// PostgreSQL's `jsonb` cannot hold) in payloads and metadata.
    pub fn validate(&self, max_event_bytes: usize) -> Result<()> {
        if let Some(reason) = crate::tombstone::tombstone_problem(&self.events) {
            return Err(Error::InvalidEvent {
                stream: self.stream_id.clone(),
                event_type: crate::tombstone::TOMBSTONE_EVENT_TYPE.to_owned(),
                reason,
            });
        }
        for e in &self.events {
            let invalid = |reason| Error::InvalidEvent {
                stream: self.stream_id.clone(),
                event_type: e.event_type.clone(),
                reason,
            };
            if let Some(reason) = type_name_problem(&e.event_type) {
                return Err(invalid(reason));
            }
            if e.schema_version == 0 || e.schema_version > i32::MAX as u32 {
                return Err(invalid("a schema version is between 1 and 2147483647"));
            }
            if e.size() > max_event_bytes {
                return Err(Error::EventTooLarge {
                    stream: self.stream_id.clone(),
                    event_type: e.event_type.clone(),
                    size: e.size(),
                    limit: max_event_bytes,
                });
            }
            if has_escaped_nul(e.payload.get()) || e.metadata.has_nul() {
                return Err(invalid("payloads and metadata may not contain NUL (\\u0000) characters"));
            }
        }
        Ok(())
    }
}

/// What is wrong with an event type name, if anything.
pub(crate) fn type_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 128 {
        return Some("an event type name is 1 to 128 bytes long");
    }
    let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    (!name.as_bytes().iter().all(ok)).then_some("an event type name holds only ASCII letters, digits, '_' and '-'")
}

/// Whether JSON text contains the escape `\u0000` (an odd run of backslashes before `u0000`).
fn has_escaped_nul(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut from = 0;
    while let Some(i) = json[from..].find("u0000").map(|i| i + from) {
        let slashes = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
        if slashes % 2 == 1 {
            return true;
        }
        from = i + 1;
    }
    false
}

/// What an append did (or, for a duplicate command id, what the first append did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// The command id the append was recorded under, if any.
    pub command_id: Option<CommandId>,
    /// The stream's version before the append.
    pub previous_version: StreamVersion,
    /// The stream's version after the append: the last appended event's version.
    pub version: StreamVersion,
    /// The log position of the last appended event; `None` when nothing was appended.
    pub last_position: Option<LogPosition>,
    /// True when this is the recorded outcome of an earlier append with the same command id.
    pub duplicate: bool,
}

impl AppendOutcome {
    /// How many events the append wrote.
    pub fn appended(&self) -> u64 {
        self.version.0 - self.previous_version.0
    }
}

/// A saved aggregate state, so loading needs only the events after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream the state was built from.
    pub stream_id: StreamId,
    /// The schema version of `state`; snapshots of another version are ignored.
    pub schema_version: u32,
    /// The stream version the state includes.
    pub stream_version: StreamVersion,
    /// The serialised state.
    pub state: serde_json::Value,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Storage of events: append with optimistic concurrency and idempotent command ids,
/// read one stream, read the global log, wait for new events, keep snapshots.
///
/// Every implementation must pass the contract suite in the `tidemark-tests` crate.
pub trait EventStore: Send + Sync {
    /// Appends events to one stream, all or nothing.
    ///
    /// Fails with [`Error::Conflict`] when the stream is not at the expected version,
    /// [`Error::StreamDeleted`] when it ends with a tombstone, [`Error::EventTooLarge`]
    /// for an event over the limit, and writes nothing then.
    fn append(&self, request: AppendRequest) -> impl Future<Output = Result<AppendOutcome>> + Send;

    /// Reads up to `limit` events of one stream, in order, starting at version `from`
    /// (inclusive; version 1 is the first event).
    fn read_stream(
        &self,
        stream_id: &StreamId,
        from: StreamVersion,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send;

    /// Reads up to `limit` events of the global log after `after`, in log order.
    ///
    /// The log is gap-safe: an event is returned only once every event that will ever
    /// be ordered before it is visible, so a reader that resumes after the last
    /// position it saw never skips an event and never sees one twice.
    fn read_log(&self, after: LogPosition, limit: usize) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send;

    /// The identities of the events stored at these stream versions: one for each that
    /// exists, in no particular order. Consumers check broker messages against them.
    ///
    /// The provided method reads each event with [`read_stream`](Self::read_stream);
    /// stores with a cheaper lookup (one query for all) override it.
    fn identities(&self, at: &[(StreamId, StreamVersion)]) -> impl Future<Output = Result<Vec<EventIdentity>>> + Send {
        async move {
            let mut found = Vec::with_capacity(at.len());
            for (stream, version) in at {
                let event = self.read_stream(stream, *version, 1).await?.into_iter().next();
                found.extend(event.filter(|e| e.stream_version == *version).map(|e| EventIdentity::of(&e)));
            }
            Ok(found)
        }
    }

    /// Checks events delivered by a broker against the store, in one call: returns those
    /// whose identity (id, type, schema version, log position) differs from the event
    /// stored at their stream version, or that name a version the store does not hold,
    /// each with what the store holds there, in no particular order. Events the store
    /// confirms are not returned, so a batch of genuine events costs the caller nothing
    /// to decode.
    ///
    /// The provided method compares with [`identities`](Self::identities); stores that
    /// can compare where the events are kept override it.
    fn verify_events(&self, events: &[&RecordedEvent]) -> impl Future<Output = Result<Vec<Mismatch>>> + Send {
        async move {
            let at: Vec<(StreamId, StreamVersion)> =
                events.iter().map(|e| (e.stream_id.clone(), e.stream_version)).collect();
            let stored = self.identities(&at).await?;
            let stored: HashMap<(&StreamId, StreamVersion), &EventIdentity> =
                stored.iter().map(|i| ((&i.stream_id, i.stream_version), i)).collect();
            let mismatches = events.iter().enumerate().filter_map(|(index, event)| {
                let found = stored.get(&(&event.stream_id, event.stream_version)).copied();
                match found {
                    Some(identity) if identity.matches(event) => None,
                    _ => Some(Mismatch::new(index, found.cloned())),
                }
            });
            Ok(mismatches.collect())
        }
    }

    /// Waits until events after `after` may be readable, or `timeout` passes.
    /// Returns `true` when woken by new events, `false` on timeout. Spurious wake-ups
    /// are allowed: read the log to find out.
    fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> impl Future<Output = Result<bool>> + Send;

    /// The version of a stream (`StreamVersion::EMPTY` when it has no events).
    fn stream_version(&self, stream_id: &StreamId) -> impl Future<Output = Result<StreamVersion>> + Send;

    /// The position of the last readable event of the log, if any.
    fn log_head(&self) -> impl Future<Output = Result<Option<LogPosition>>> + Send;

    /// The recorded outcome of a command id, if an append was recorded under it.
    fn command_outcome(&self, command_id: CommandId) -> impl Future<Output = Result<Option<AppendOutcome>>> + Send;

    /// The latest snapshot of a stream, if any.
    fn load_snapshot(&self, stream_id: &StreamId) -> impl Future<Output = Result<Option<Snapshot>>> + Send;

    /// Deletes a stream: appends a tombstone (see [`AppendRequest::tombstone`]) when the
    /// stream is at `expected`. Afterwards every append to it fails with
    /// [`Error::StreamDeleted`], and so does a second tombstone. Reads still return its
    /// events, the tombstone last.
    fn tombstone(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send {
        self.append(AppendRequest::tombstone(stream_id.clone(), expected))
    }

    /// Saves a snapshot, replacing an older one of the same stream. A snapshot at a
    /// lower stream version than the stored one (with the same schema version) is ignored.
    fn save_snapshot(&self, snapshot: Snapshot) -> impl Future<Output = Result<()>> + Send;
}

/// Reads a whole stream from `from`, in pages of `page` events.
pub async fn read_stream_to_end<S: EventStore + ?Sized>(
    store: &S,
    stream_id: &StreamId,
    from: StreamVersion,
    page: usize,
) -> Result<Vec<RecordedEvent>> {
    let page = page.max(1);
    let mut all = Vec::new();
    let mut next = from;
    loop {
        let batch = store.read_stream(stream_id, next, page).await?;
        let done = batch.len() < page;
        if let Some(last) = batch.last() {
            next = last.stream_version.next();
        }
        all.extend(batch);
        if done {
            return Ok(all);
        }
    }
}

/// Reads the global log from its start through `through` (inclusive), in pages of `page`
/// events. The readable horizon may trail a commit while older transactions are still open;
/// this waits for it (through [`EventStore::wait_for_log`]) for up to `timeout` in all.
/// Returns `Ok(None)` when the log did not become readable through `through` in time.
///
/// # Errors
///
/// The store's error, from a read or a wait.
pub async fn read_log_through<S: EventStore + ?Sized>(
    store: &S,
    through: LogPosition,
    page: usize,
    timeout: Duration,
) -> Result<Option<Vec<RecordedEvent>>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut all = Vec::new();
    let mut after = LogPosition::START;
    while after < through {
        let batch = store.read_log(after, page.max(1)).await?;
        match batch.last() {
            Some(last) => after = last.position,
            None => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                store.wait_for_log(after, left.min(Duration::from_millis(100))).await?;
            }
        }
        all.extend(batch);
    }
    Ok(Some(all))
}

/// Default time a waiting reader sleeps before polling again when no wake-up comes.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_nul_is_found_only_as_an_escape() {
        assert!(has_escaped_nul(r#"{"a":"x\u0000y"}"#));
        assert!(has_escaped_nul(r#"{"a":"\\\u0000"}"#));
        assert!(!has_escaped_nul(r#"{"a":"\\u0000"}"#));
        assert!(!has_escaped_nul(r#"{"a":"u0000"}"#));
    }

    #[test]
    fn type_names_fit_a_subject_token() {
        assert_eq!(type_name_problem("OrderPlaced"), None);
        assert_eq!(type_name_problem("order_placed-2"), None);
        for bad in ["", "a.b", "a b", "a*", "a>", "é", &"x".repeat(129)] {
            assert!(type_name_problem(bad).is_some(), "{bad}");
        }
    }
}

//! Deleting a stream: a tombstone event ends it for good.
//!
//! A tombstone is an ordinary stored event with a reserved type, appended after the
//! stream's last event. Every store refuses any append after it with
//! [`Error::StreamDeleted`](crate::Error::StreamDeleted), and the command handler refuses
//! to load a stream that ends with one. Because the tombstone takes the next version of
//! the stream like any other event, a tombstone and an append racing for that version are
//! ordered by the store's version check: one of them wins, and no event ever follows a
//! tombstone.

use crate::event::{NewEvent, RecordedEvent};
use crate::store::AppendRequest;
use crate::stream_id::StreamId;
use crate::version::ExpectedVersion;

/// The reserved type name of a tombstone event. An append may carry it only as its one
/// event (see [`AppendRequest::tombstone`]).
pub const TOMBSTONE_EVENT_TYPE: &str = "_Tombstone";

impl NewEvent {
    /// A tombstone: the event that deletes its stream (empty payload, schema version 1).
    pub fn tombstone() -> Self {
        // "{}" is valid JSON: the fallback (JSON null) is never taken.
        let payload = serde_json::value::RawValue::from_string("{}".to_owned()).unwrap_or_default();
        Self::new(TOMBSTONE_EVENT_TYPE, 1, payload)
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.event_type == TOMBSTONE_EVENT_TYPE
    }
}

impl RecordedEvent {
    /// Whether this is a tombstone: the stream it ends is deleted.
    pub fn is_tombstone(&self) -> bool {
        self.event_type == TOMBSTONE_EVENT_TYPE
    }
}

impl AppendRequest {
    /// An append that deletes `stream_id`: one tombstone event, written only when the
    /// stream is at `expected` (use [`ExpectedVersion::Any`] to delete whatever its
    /// version). A stream that was never written may be tombstoned too: its id can then
    /// never be used.
    pub fn tombstone(stream_id: StreamId, expected: ExpectedVersion) -> Self {
        Self::new(stream_id, expected, vec![NewEvent::tombstone()])
    }
}

/// What is wrong with the tombstones of an append, if anything: a tombstone must be the
/// only event of its append, with schema version 1.
pub(crate) fn tombstone_problem(events: &[NewEvent]) -> Option<&'static str> {
    let tombstones = events.iter().filter(|e| e.is_tombstone()).count();
    match tombstones {
        0 => None,
        1 if events.len() == 1 && events[0].schema_version == 1 => None,
        _ => Some("the type name _Tombstone is reserved: a tombstone is the only event of its append, version 1"),
    }
}

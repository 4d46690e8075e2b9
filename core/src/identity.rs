//! What identifies a stored event, without its payload.

use crate::event::RecordedEvent;
use crate::ids::EventId;
use crate::stream_id::StreamId;
use crate::version::{LogPosition, StreamVersion};

/// Where an event is stored and what it is, without its payload or metadata: what a
/// consumer compares a broker message's headers with to tell an event of the store from
/// a message someone else published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventIdentity {
    /// The event's id.
    pub event_id: EventId,
    /// Its stream.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub stream_version: StreamVersion,
    /// Its position in the global log.
    pub position: LogPosition,
    /// Its stored type name.
    pub event_type: String,
    /// Its stored schema version.
    pub schema_version: u32,
}

impl EventIdentity {
    /// The identity of a stored event.
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            position: event.position,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
        }
    }

    /// Whether this identity, claimed by a delivered event, is the stored event's.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.event_id == event.event_id
            && self.stream_id == event.stream_id
            && self.stream_version == event.stream_version
            && self.position == event.position
            && self.event_type == event.event_type
            && self.schema_version == event.schema_version
    }
}

/// A delivered event whose identity the store does not confirm: see
/// [`EventStore::verify_events`](crate::EventStore::verify_events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// The event's index in the slice that was verified.
    pub index: usize,
    /// What the store holds at the event's stream version, if anything.
    pub stored: Option<EventIdentity>,
}

impl Mismatch {
    /// The event at `index` does not match `stored`.
    pub fn new(index: usize, stored: Option<EventIdentity>) -> Self {
        Self { index, stored }
    }
}

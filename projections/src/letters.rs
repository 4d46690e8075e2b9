//! What a projection did not apply: dead letters, and rogue messages that were not events
//! of the store.

use tidemark::{EventId, LogPosition, StreamId, StreamVersion};

/// What happened to a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterStatus {
    /// Waiting for a retry or a skip; later events of the stream wait behind it.
    Parked,
    /// Passed over, by policy or by an operator; kept as a record.
    Skipped,
}

impl DeadLetterStatus {
    /// `parked` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::Skipped => "skipped",
        }
    }
}

/// An event a projection did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its stream.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub stream_version: StreamVersion,
    /// Its id.
    pub event_id: EventId,
    /// Its stored type name.
    pub event_type: String,
    /// Its log position.
    pub position: LogPosition,
    /// Parked or skipped.
    pub status: DeadLetterStatus,
    /// Why: the projection's error, or the poison event it is parked behind.
    pub error: String,
}

/// A message on the broker that is not an event of the store (headers missing or
/// invalid, a payload that is not JSON, a stream of another partition, a subject or
/// headers that disagree with the stored event, or no such event at all). It never
/// touches a stream's progress; it is parked with its reason until an operator skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RogueMessage {
    /// What identifies the message in the record: `seq <N>` (its sequence in the
    /// JetStream stream) or, when the broker gives none, `event <claimed event id>`.
    /// A redelivered message updates its record instead of adding one.
    pub key: String,
    /// The partition it was delivered on.
    pub partition: u32,
    /// Its subject (empty when not known).
    pub subject: String,
    /// The stream id its headers claim, when they name a valid one.
    pub stream_id: Option<StreamId>,
    /// The stream version its headers claim, when they are readable.
    pub stream_version: Option<StreamVersion>,
    /// The event id its headers claim, when they are readable.
    pub event_id: Option<EventId>,
    /// Why it was rejected.
    pub reason: String,
    /// Parked (waiting for an operator) or skipped (cleared by `dlq skip --rogue`).
    pub status: DeadLetterStatus,
}

impl RogueMessage {
    /// A parked rogue message with nothing claimed yet.
    pub fn new(key: impl Into<String>, partition: u32, subject: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            partition,
            subject: subject.into(),
            stream_id: None,
            stream_version: None,
            event_id: None,
            reason: reason.into(),
            status: DeadLetterStatus::Parked,
        }
    }

    /// Records what the message's headers claim.
    pub fn claiming(mut self, stream_id: StreamId, stream_version: StreamVersion, event_id: EventId) -> Self {
        self.stream_id = Some(stream_id);
        self.stream_version = Some(stream_version);
        self.event_id = Some(event_id);
        self
    }
}

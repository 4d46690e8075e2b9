//! Errors of the event store and the event codec.

use crate::ids::EventId;
use crate::personal::PersonalError;
use crate::stream_id::StreamId;
use crate::version::{ExpectedVersion, LogPosition, StreamVersion};

/// `Result` with tidemark's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream id that breaks the rules documented on [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream id {id:?}: {reason}")]
pub struct InvalidStreamId {
    /// The rejected id.
    pub id: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

/// Errors from event stores and from decoding stored events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was not at the expected version; nothing of the append was written.
    #[error("version conflict on stream {stream}: expected {expected}, but it is at version {actual}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version as the store saw it.
        actual: StreamVersion,
    },
    /// A stored event's type and schema version are neither current nor covered by an upcaster chain.
    #[error("unknown event type {event_type:?} version {schema_version} at log position {position}: no current type or upcaster chain covers it")]
    UnknownEventType {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// Where the event sits in the log.
        position: LogPosition,
    },
    /// A stored event's payload does not decode into its (upcast) type.
    #[error("cannot decode event {event_type:?} version {schema_version} at log position {position} (stream {stream} version {stream_version}): {source}")]
    Undecodable {
        /// The stream of the event.
        stream: StreamId,
        /// The event's version in its stream.
        stream_version: StreamVersion,
        /// Where the event sits in the log.
        position: LogPosition,
        /// The type name the payload was decoded as.
        event_type: String,
        /// The schema version the payload was decoded as.
        schema_version: u32,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster rejected a stored payload.
    #[error("upcaster from {event_type:?} version {schema_version} failed at log position {position}: {reason}")]
    Upcast {
        /// The type the failing step starts from.
        event_type: String,
        /// The version the failing step starts from.
        schema_version: u32,
        /// Where the event sits in the log.
        position: LogPosition,
        /// The upcaster's explanation.
        reason: String,
    },
    /// An event could not be serialised to JSON.
    #[error("cannot encode event {event_type:?}: {source}")]
    Encode {
        /// The event's type name.
        event_type: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// A stream id broke the rules.
    #[error(transparent)]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An event is larger than the store accepts; nothing of the append was written.
    #[error("event {event_type:?} for stream {stream} is {size} bytes, over the limit of {limit} bytes")]
    EventTooLarge {
        /// The stream appended to.
        stream: StreamId,
        /// The event's type name.
        event_type: String,
        /// Payload plus metadata size, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// An event breaks a rule of what can be stored (type name, schema version, NUL
    /// characters); nothing of the append was written.
    #[error("event {event_type:?} for stream {stream} cannot be stored: {reason}")]
    InvalidEvent {
        /// The stream appended to.
        stream: StreamId,
        /// The event's type name.
        event_type: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The stream is deleted (it ends with a tombstone): nothing can be appended to it and
    /// no aggregate is loaded from it; nothing of the append was written.
    #[error("stream {stream} is deleted (tombstone at version {version})")]
    StreamDeleted {
        /// The deleted stream.
        stream: StreamId,
        /// The version of its tombstone, its last event.
        version: StreamVersion,
    },
    /// An event with this id is already stored; nothing of the append was written.
    #[error("an event with id {0} is already stored")]
    DuplicateEventId(EventId),
    /// Personal data could not be sealed or revealed (see [`PersonalError`]); an append
    /// failing so wrote nothing.
    #[error(transparent)]
    Personal(#[from] PersonalError),
    /// An event's tenant is not its stream's: a stream belongs to the tenant of its
    /// first event (or to no tenant), and every later event must carry the same one.
    /// Nothing of the append was written.
    #[error("stream {stream} belongs to tenant {stream_tenant:?}; an event for tenant {tenant:?} is refused")]
    TenantMismatch {
        /// The stream appended to.
        stream: StreamId,
        /// The tenant the stream belongs to (`None`: no tenant, or, for a PostgreSQL
        /// connection restricted by row-level security, a tenant it may not see).
        stream_tenant: Option<String>,
        /// The tenant the refused event carried (`None`: no tenant).
        tenant: Option<String>,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Error {
    /// Whether trying the same operation again later may succeed (a lost connection,
    /// a server restarting, a serialisation failure, a conflict).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict { .. } => true,
            Self::Backend(b) => b.retryable,
            Self::Personal(PersonalError::Keys(b)) => b.retryable,
            _ => false,
        }
    }
}

/// A failure of the storage backend, with its source kept.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct BackendError {
    /// What the store was doing.
    pub context: &'static str,
    /// Whether the failure is transient (connection lost, server shutting down, pool timeout).
    pub retryable: bool,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl BackendError {
    /// Wraps `source`.
    pub fn new(
        context: &'static str,
        retryable: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self { context, retryable, source: source.into() }
    }
}

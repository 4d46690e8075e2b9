//! Errors of the relay.

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use tidemark::{EventId, LogPosition};

use crate::config::ConfigError;
use crate::signature::KeyError;
use crate::subject::SubjectError;

/// `Result` with the relay's [`RelayError`] as the default error.
pub type Result<T, E = RelayError> = std::result::Result<T, E>;

/// Why the relay stopped, or why it retries (see [`RelayError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The event store failed: reading the log, loading or saving the checkpoint.
    #[error("event store: {0}")]
    Store(#[source] tidemark::Error),
    /// The dedicated PostgreSQL connection holding (or seeking) the leader lock failed.
    #[error("leader lock connection: {0}")]
    Lock(#[source] sqlx::Error),
    /// The key messages are signed with could not be loaded.
    #[error("message key: {0}")]
    Key(#[source] KeyError),
    /// The leader lock connection did not answer a liveness check in time.
    #[error("leader lock connection did not answer within {0:?}")]
    LockUnresponsive(std::time::Duration),
    /// Publishing an event, or waiting for its PubAck, failed.
    #[error("publishing event {event_id} at {position}: {source}")]
    Publish {
        /// The event's id.
        event_id: EventId,
        /// The event's log position.
        position: LogPosition,
        /// What async-nats reported.
        #[source]
        source: PublishError,
    },
    /// A stored event has no valid subject (its category or type is not a subject token).
    #[error("event {event_id} at {position} cannot be published: {source}")]
    Unpublishable {
        /// The event's id.
        event_id: EventId,
        /// The event's log position.
        position: LogPosition,
        /// Which part of the subject is invalid.
        #[source]
        source: SubjectError,
    },
    /// An event is larger than the NATS server's `max_payload`.
    #[error("event {event_id} at {position} is too large for the NATS server: {source}")]
    TooLarge {
        /// The event's id.
        event_id: EventId,
        /// The event's log position.
        position: LogPosition,
        /// What async-nats reported.
        #[source]
        source: PublishError,
    },
}

impl RelayError {
    /// Whether the relay retries after this error (with backoff, from its checkpoint)
    /// rather than returning it from `run`: NATS failures, transient database failures
    /// and lost lock connections are retried; configuration errors, events that cannot be
    /// published and permanent database errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(_) | Self::Unpublishable { .. } | Self::TooLarge { .. } => false,
            Self::Store(e) => e.is_retryable(),
            Self::Lock(e) => tidemark_postgres::is_transient(e),
            Self::LockUnresponsive(_) => true,
            Self::Key(e) => e.is_retryable(),
            Self::Publish { source, .. } => source.kind() != PublishErrorKind::MaxPayloadExceeded,
        }
    }
}

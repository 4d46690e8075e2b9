//! Errors of the projection runtime.

use tidemark::{EventId, LogPosition, StreamVersion};

/// What a projection's `setup` or `apply` may fail with: any error, kept as the source.
pub type ApplyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of this crate.
pub type Result<T, E = ProjectionError> = std::result::Result<T, E>;

/// Why the projection runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// A projection or consumer name that cannot be used.
    #[error("invalid projection name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A configuration value out of range.
    #[error("invalid runner configuration: {0}")]
    Config(&'static str),
    /// The event store failed (reading events for a gap repair or a thin notification).
    #[error(transparent)]
    Store(#[from] tidemark::Error),
    /// The read-model database (or the coordination's) failed.
    #[error("read-model database error while {context}: {source}")]
    Database {
        /// What the runtime was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The broker failed (creating a consumer, pulling).
    #[error("broker error while {context}: {source}")]
    Broker {
        /// What the runtime was doing.
        context: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The projection's `apply` failed on an event; the batch was rolled back.
    #[error("projection {projection} failed on event {event_id} ({event_type} at {position}): {source}")]
    Apply {
        /// The projection.
        projection: String,
        /// The event it failed on.
        event_id: EventId,
        /// The event's stored type name.
        event_type: String,
        /// The event's log position.
        position: LogPosition,
        /// The projection's error.
        #[source]
        source: ApplyError,
    },
    /// The read-model database went away while the projection's `apply` was using it (a
    /// lost connection, a server shutting down or starting up): not the event's fault, so
    /// it is retried and never counted towards parking the event as poison.
    #[error("projection {projection}: the read-model database failed during apply: {source}")]
    ApplyUnavailable {
        /// The projection.
        projection: String,
        /// The error the projection returned, which holds a transient database error.
        #[source]
        source: ApplyError,
    },
    /// The projection could not forget a stream it was asked to rebuild.
    #[error("projection {projection} could not forget stream {stream}: {source}")]
    Forget {
        /// The projection.
        projection: String,
        /// The stream.
        stream: String,
        /// The projection's error.
        #[source]
        source: ApplyError,
    },
    /// The projection's `setup` failed.
    #[error("setting up projection {projection} failed: {source}")]
    Setup {
        /// The projection.
        projection: String,
        /// The projection's error.
        #[source]
        source: ApplyError,
    },
    /// The projection's version differs from the one whose tables were set up: its read
    /// model must be rebuilt before it runs again.
    #[error("projection {projection} was set up at version {stored}, the code is at version {current}: rebuild it")]
    VersionChanged {
        /// The projection.
        projection: String,
        /// The version recorded in the database.
        stored: u32,
        /// The version of the running code.
        current: u32,
    },
    /// A wait for a projection to catch up ran out of time.
    #[error("projection {projection} did not reach {stream_id} version {version} within the timeout")]
    WaitTimedOut {
        /// The projection waited for.
        projection: String,
        /// The stream waited for.
        stream_id: String,
        /// The version waited for.
        version: StreamVersion,
    },
}

impl ProjectionError {
    /// Whether trying again later may succeed: database, broker and retryable store
    /// failures, and failures of a projection's own code (it may depend on something
    /// transient too).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Database { .. }
            | Self::Broker { .. }
            | Self::Apply { .. }
            | Self::ApplyUnavailable { .. }
            | Self::WaitTimedOut { .. } => true,
            _ => false,
        }
    }

    /// Wraps a read-model database's error, naming what was being done (for backends).
    pub fn database<E>(context: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| Self::Database { context, source: Box::new(source) }
    }

    /// Wraps a broker's error, naming what was being done (for feeds).
    pub fn broker(context: &'static str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        move |source| Self::Broker { context, source }
    }
}

/// Checks a projection (or consumer) name (for backends naming things after it): 1 to 64 ASCII letters, digits, `_` and `-`,
/// so it is safe in a consumer name, a lock key and a subject token.
pub fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("a name may not be empty")
    } else if name.len() > 64 {
        Some("a name is at most 64 bytes")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Some("a name holds only ASCII letters, digits, '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ProjectionError::InvalidName { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Whether `error`, or an error in its source chain, is an I/O error that says a
/// connection was lost or could not be made (refused, reset, aborted, broken, timed out,
/// not connected): the failure of a server going away rather than of the input. Used to
/// tell a projection's transient failures from its poison events, whatever driver the
/// projection writes through.
pub fn is_connection_loss(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::BrokenPipe
                    | ErrorKind::TimedOut
                    | ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_connection_loss;

    #[derive(Debug, thiserror::Error)]
    #[error("driver failed")]
    struct Driver(#[source] std::io::Error);

    #[test]
    fn a_lost_connection_anywhere_in_the_chain_is_a_connection_loss() {
        let reset = Driver(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert!(is_connection_loss(&reset));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_connection_loss(&refused));
    }

    #[test]
    fn other_failures_are_not() {
        let missing = Driver(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
        assert!(!is_connection_loss(&missing));
        let parse = "x".parse::<u32>().expect_err("not a number");
        assert!(!is_connection_loss(&parse));
    }
}

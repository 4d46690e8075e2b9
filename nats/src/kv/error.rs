//! Errors of the KV projection.

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::stream::{DirectGetError, DirectGetErrorKind, LastRawMessageError, LastRawMessageErrorKind};

/// Why a [`KvProjection`](crate::KvProjection) could not be built or could not write a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The projection's name breaks the naming rules of projections.
    #[error("invalid KV projection name: {0}")]
    InvalidName(#[source] tidemark_projections::ProjectionError),
    /// The bucket is reached through a JetStream domain or API prefix, which the projection
    /// does not write through.
    #[error("KV bucket {bucket} uses a JetStream domain or API prefix, which is not supported")]
    UnsupportedBucket {
        /// The bucket.
        bucket: String,
    },
    /// The bucket did not answer in time or the connection to it is down. The source is an
    /// I/O error of kind `TimedOut` holding the client's error, so the projection runner
    /// retries it and never counts it towards parking the event as poison.
    #[error("KV bucket {bucket} unavailable while {context}: {source}")]
    Unavailable {
        /// The bucket.
        bucket: String,
        /// What the projection was doing.
        context: &'static str,
        /// The client's error, inside an I/O error of kind `TimedOut`.
        #[source]
        source: std::io::Error,
    },
    /// The server refused a request for another reason than a stale revision.
    #[error("KV bucket {bucket} refused {context} of key {key}: {source}")]
    Request {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What the projection was doing.
        context: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The key's last value carries no stream version header: something other than this
    /// projection wrote it, and overwriting it could lose newer state.
    #[error("key {key} of KV bucket {bucket} was not written by a KV projection (no stream version header)")]
    Foreign {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The key's stream version header is not a number.
    #[error("key {key} of KV bucket {bucket} has an invalid stream version header {value:?}")]
    BadVersion {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The header's value.
        value: String,
    },
    /// The stored document does not decode as the projection's document type.
    #[error("key {key} of KV bucket {bucket} does not hold a valid document: {source}")]
    Decode {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The document could not be encoded as JSON.
    #[error("the document for key {key} could not be encoded: {source}")]
    Encode {
        /// The key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Other writers changed the key between each read and write, `attempts` times in a row.
    #[error("key {key} of KV bucket {bucket} kept changing under {attempts} compare-and-set attempts")]
    Contended {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// How many writes were refused.
        attempts: u32,
    },
}

/// How a write went wrong: a stale revision (read again), or a failure.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// The key changed since it was read.
    Stale,
    /// Anything else.
    Failed(KvError),
}

fn unavailable(bucket: &str, context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> KvError {
    let source = std::io::Error::new(std::io::ErrorKind::TimedOut, source);
    KvError::Unavailable { bucket: bucket.to_owned(), context, source }
}

fn request(
    bucket: &str,
    key: &str,
    context: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> KvError {
    KvError::Request { bucket: bucket.to_owned(), key: key.to_owned(), context, source: Box::new(source) }
}

/// Classifies a failed publish (the write of a key).
pub(crate) fn publish_failure(bucket: &str, key: &str, error: PublishError) -> WriteFailure {
    match error.kind() {
        PublishErrorKind::WrongLastSequence => WriteFailure::Stale,
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe | PublishErrorKind::MaxAckPending => {
            WriteFailure::Failed(unavailable(bucket, "writing a key", error))
        }
        _ => WriteFailure::Failed(request(bucket, key, "the write", error)),
    }
}

/// Classifies a failed direct read of a key; `None` when the key has no message.
pub(crate) fn direct_get_failure(bucket: &str, key: &str, error: DirectGetError) -> Option<KvError> {
    match error.kind() {
        DirectGetErrorKind::NotFound => None,
        DirectGetErrorKind::TimedOut | DirectGetErrorKind::Request => Some(unavailable(bucket, "reading a key", error)),
        _ => Some(request(bucket, key, "the read", error)),
    }
}

/// Classifies a failed read of a key through the stream API; `None` when the key has no
/// message.
pub(crate) fn last_message_failure(bucket: &str, key: &str, error: LastRawMessageError) -> Option<KvError> {
    match error.kind() {
        LastRawMessageErrorKind::NoMessageFound => None,
        LastRawMessageErrorKind::Other => Some(unavailable(bucket, "reading a key", error)),
        _ => Some(request(bucket, key, "the read", error)),
    }
}

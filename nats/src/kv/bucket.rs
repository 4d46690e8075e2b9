//! One key of a KV bucket read and written together with the stream version it reflects.
//!
//! A value is the document's JSON; the headers [`HEADER_STREAM_ID`] and
//! [`HEADER_STREAM_VERSION`] say which stream and version it reflects. A document that
//! became `None` is a KV delete marker carrying the same headers, so the version survives
//! the delete and a replay cannot bring an older document back. Every write names the
//! revision it read (`Nats-Expected-Last-Subject-Sequence`, 0 for a key never written):
//! a write based on a stale read is refused by the server.

use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream::Info;
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use bytes::Bytes;
use tidemark::{StreamId, StreamVersion};

use super::error::{direct_get_failure, last_message_failure, publish_failure, KvError, WriteFailure};
use crate::headers::{HEADER_STREAM_ID, HEADER_STREAM_VERSION};

const KV_OPERATION: &str = "KV-Operation";
const EXPECTED_REVISION: &str = "Nats-Expected-Last-Subject-Sequence";

/// What a key holds now.
#[derive(Debug, Clone, Default)]
pub(crate) struct Current {
    /// The revision to name in the next write (0: the key never had a message).
    pub(crate) revision: u64,
    /// The stream version the key reflects (0: none).
    pub(crate) version: StreamVersion,
    /// The document's JSON, absent when the key is deleted or was never written.
    pub(crate) body: Option<Bytes>,
}

/// A bucket and the JetStream context its writes are published through.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    jetstream: Context,
    store: Store,
    direct: bool,
}

impl Bucket {
    pub(crate) fn new(jetstream: Context, store: Store) -> Result<Self, KvError> {
        if store.use_jetstream_prefix {
            return Err(KvError::UnsupportedBucket { bucket: store.name.clone() });
        }
        let info: &Info = store.stream.cached_info();
        let direct = info.config.allow_direct;
        Ok(Self { jetstream, store, direct })
    }

    pub(crate) fn name(&self) -> &str {
        &self.store.name
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Reads the last message of `key`.
    pub(crate) async fn read(&self, key: &str) -> Result<Current, KvError> {
        let subject = format!("{}{}", self.store.prefix, key);
        let stream = &self.store.stream;
        let found = if self.direct {
            match stream.direct_get_last_for_subject(subject).await {
                Ok(message) => Some(message),
                Err(error) => match direct_get_failure(self.name(), key, error) {
                    None => None,
                    Some(error) => return Err(error),
                },
            }
        } else {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => Some(message),
                Err(error) => match last_message_failure(self.name(), key, error) {
                    None => None,
                    Some(error) => return Err(error),
                },
            }
        };
        let Some(message) = found else {
            return Ok(Current::default());
        };
        let operation = message.headers.get(KV_OPERATION).map(|value| value.as_str().to_owned());
        let deleted = matches!(operation.as_deref(), Some("DEL" | "PURGE"));
        let version = match message.headers.get(HEADER_STREAM_VERSION) {
            Some(value) => self.parse_version(key, value.as_str())?,
            None if deleted => StreamVersion(0),
            None => return Err(KvError::Foreign { bucket: self.name().to_owned(), key: key.to_owned() }),
        };
        let body = (!deleted).then_some(message.payload);
        Ok(Current { revision: message.sequence, version, body })
    }

    fn parse_version(&self, key: &str, value: &str) -> Result<StreamVersion, KvError> {
        value.parse().map(StreamVersion).map_err(|_| KvError::BadVersion {
            bucket: self.name().to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// Writes `body` (a delete marker when `None`) as the state of `stream` at `version`,
    /// if the key is still at `revision`. Returns the new revision.
    pub(crate) async fn write(
        &self,
        key: &str,
        stream: &StreamId,
        version: StreamVersion,
        body: Option<Bytes>,
        revision: u64,
    ) -> Result<u64, WriteFailure> {
        let subject = format!("{}{}", self.store.put_prefix.as_ref().unwrap_or(&self.store.prefix), key);
        let mut headers = HeaderMap::new();
        headers.insert(EXPECTED_REVISION, revision.to_string().as_str());
        headers.insert(HEADER_STREAM_ID, stream.as_str());
        headers.insert(HEADER_STREAM_VERSION, version.0.to_string().as_str());
        if body.is_none() {
            headers.insert(KV_OPERATION, "DEL");
        }
        let failure = |error| publish_failure(self.name(), key, error);
        let ack = self.jetstream.publish_with_headers(subject, headers, body.unwrap_or_default()).await;
        let ack = ack.map_err(failure)?.await.map_err(failure)?;
        Ok(ack.sequence)
    }

    /// Purges `key`: every message of it goes, and its version with them.
    pub(crate) async fn purge(&self, key: &str) -> Result<(), KvError> {
        self.store.purge(key).await.map_err(|error| KvError::Request {
            bucket: self.name().to_owned(),
            key: key.to_owned(),
            context: "the purge",
            source: Box::new(error),
        })
    }
}

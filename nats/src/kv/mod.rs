//! Event-carried state transfer: a projection that keeps, per stream, one document in a
//! JetStream KV bucket, for other services to read instead of replaying events.

mod bucket;
mod error;

use std::collections::HashMap;
use std::fmt;

use async_nats::jetstream::kv::Store;
use async_nats::jetstream::Context;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tidemark::{DomainEvent, Envelope, EventCodec, StreamId};
use tidemark_projections::{ApplyError, Projection, ReadModels};

use bucket::{Bucket, Current};
pub use error::KvError;
use error::WriteFailure;

/// Reads in a row a key may be found changed by another writer before the write gives up
/// with [`KvError::Contended`] (the runner then retries the batch).
const MAX_ATTEMPTS: u32 = 10;

/// The pure function that derives a stream's document: the document so far (none before
/// the stream's first handled event, or after a delete) and the next event give the new
/// document; `None` deletes the key.
pub type Evolve<E, D> = fn(Option<D>, &Envelope<E>) -> Option<D>;

/// A projection that publishes the current state of each stream to a JetStream KV bucket.
///
/// Key `order-42` holds the JSON of the document derived from the events of stream
/// `order-42` (stream ids are valid KV keys as they are). Every value carries the stream
/// version it reflects in its [`HEADER_STREAM_VERSION`](crate::HEADER_STREAM_VERSION)
/// header (and its stream in [`HEADER_STREAM_ID`](crate::HEADER_STREAM_ID)); a document
/// that became `None` is a KV delete marker with the same headers, so readers see the key
/// deleted and the version is kept.
///
/// It runs in a [`ProjectionRunner`](tidemark_projections::ProjectionRunner) like any
/// projection, over any read-model backend: the runner keeps its checkpoint, its partitions,
/// its dead letters and its lag there, and a batch's KV writes happen before the batch's
/// checkpoint commits. The projection is not [undoable](Projection::undoable), so the
/// runner checks each batch against what was committed before applying it; the only events
/// applied again are those of a batch that failed before its commit. Those find the key
/// already at their version and are passed over: a write only happens for events above the
/// key's version, and names the key's revision as read, so a late or replayed event never
/// overwrites newer state (a stale write is refused by the server, the key is read again).
/// Each key thus reflects its stream's events once each, in stream order, whatever
/// instant a runner is killed.
///
/// A batch costs one read and one write per stream it touches. Changing `evolve` does not
/// rewrite existing keys (they are at their versions already): purge the bucket, or use a
/// new one, and rebuild the projection.
pub struct KvProjection<E: DomainEvent, D> {
    name: String,
    codec: EventCodec<E>,
    bucket: Bucket,
    evolve: Evolve<E, D>,
}

impl<E: DomainEvent, D> fmt::Debug for KvProjection<E, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvProjection").field("name", &self.name).field("bucket", &self.bucket.name()).finish()
    }
}

impl<E, D> KvProjection<E, D>
where
    E: DomainEvent,
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// A projection named `name` (the rules of [`Projection::name`]) writing to `store`
    /// through `jetstream`, deriving documents with `evolve`. Fails on an invalid name and
    /// on a bucket reached through a JetStream domain or API prefix.
    pub fn new(
        name: impl Into<String>,
        codec: EventCodec<E>,
        jetstream: Context,
        store: Store,
        evolve: Evolve<E, D>,
    ) -> Result<Self, KvError> {
        let name = name.into();
        tidemark_projections::check_name(&name).map_err(KvError::InvalidName)?;
        let bucket = Bucket::new(jetstream, store)?;
        Ok(Self { name, codec, bucket, evolve })
    }

    /// The bucket this projection writes to.
    pub fn store(&self) -> &Store {
        self.bucket.store()
    }

    /// Brings the key of `stream` up to the last of `events` (events of that stream, in
    /// stream order), applying only those above the key's version.
    async fn write_stream(&self, stream: &StreamId, events: &[&Envelope<E>]) -> Result<(), KvError> {
        let key = stream.as_str();
        for _ in 0..MAX_ATTEMPTS {
            let current = self.bucket.read(key).await?;
            let Some((version, body)) = self.fold(key, &current, events)? else {
                return Ok(());
            };
            match self.bucket.write(key, stream, version, body, current.revision).await {
                Ok(_) => return Ok(()),
                Err(WriteFailure::Stale) => continue,
                Err(WriteFailure::Failed(error)) => return Err(error),
            }
        }
        let bucket = self.bucket.name().to_owned();
        Err(KvError::Contended { bucket, key: key.to_owned(), attempts: MAX_ATTEMPTS })
    }

    /// The version and body the key moves to, or `None` when it reflects every event already.
    fn fold(
        &self,
        key: &str,
        current: &Current,
        events: &[&Envelope<E>],
    ) -> Result<Option<(tidemark::StreamVersion, Option<Bytes>)>, KvError> {
        let mut pending = events.iter().filter(|event| event.stream_version > current.version).peekable();
        if pending.peek().is_none() {
            return Ok(None);
        }
        let mut document: Option<D> = match &current.body {
            Some(body) => Some(serde_json::from_slice(body).map_err(|source| KvError::Decode {
                bucket: self.bucket.name().to_owned(),
                key: key.to_owned(),
                source,
            })?),
            None => None,
        };
        let mut version = current.version;
        for event in pending {
            document = (self.evolve)(document, event);
            version = event.stream_version;
        }
        let body = match document {
            Some(document) => Some(
                serde_json::to_vec(&document).map_err(|source| KvError::Encode { key: key.to_owned(), source })?.into(),
            ),
            None => None,
        };
        Ok(Some((version, body)))
    }
}

impl<R, E, D> Projection<R> for KvProjection<E, D>
where
    R: ReadModels,
    E: DomainEvent,
    D: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Event = E;

    fn name(&self) -> &str {
        &self.name
    }

    fn codec(&self) -> &EventCodec<E> {
        &self.codec
    }

    /// Purges the stream's key, so that rebuilding the stream writes it from its first event.
    async fn forget_stream(&self, _tx: &mut R::Tx, stream: &StreamId) -> Result<(), ApplyError> {
        Ok(self.bucket.purge(stream.as_str()).await?)
    }

    /// KV writes are not part of the batch's transaction.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, _tx: &mut R::Tx, event: &Envelope<E>) -> Result<(), ApplyError> {
        Ok(self.write_stream(&event.stream_id, &[event]).await?)
    }

    /// One read and one write per stream of the batch.
    async fn apply_batch(&self, _tx: &mut R::Tx, events: &[Envelope<E>]) -> Result<(), ApplyError> {
        let mut order: Vec<&StreamId> = Vec::new();
        let mut by_stream: HashMap<&StreamId, Vec<&Envelope<E>>> = HashMap::new();
        for event in events {
            let list = by_stream.entry(&event.stream_id).or_insert_with(|| {
                order.push(&event.stream_id);
                Vec::new()
            });
            list.push(event);
        }
        for stream in order {
            self.write_stream(stream, &by_stream[stream]).await?;
        }
        Ok(())
    }
}

/// Opens the KV bucket `name`, creating it when it does not exist: one value per key (no
/// history), file storage, one replica, direct gets allowed.
///
/// The bucket's stream is created directly rather than through async-nats'
/// `create_key_value`, which first asks for the account's information, an answer the
/// client cannot read from nats-server 2.9.
pub async fn ensure_kv_bucket(jetstream: &Context, name: &str) -> Result<Store, KvError> {
    use async_nats::jetstream::context::KeyValueErrorKind;
    let failure = |context: &'static str, source: Box<dyn std::error::Error + Send + Sync + 'static>| {
        KvError::Request { bucket: name.to_owned(), key: String::new(), context, source }
    };
    match jetstream.get_key_value(name).await {
        Ok(store) => return Ok(store),
        Err(error) if error.kind() == KeyValueErrorKind::GetBucket => {}
        Err(error) => return Err(failure("opening the bucket", Box::new(error))),
    }
    let created = jetstream.get_or_create_stream(bucket_stream(name)).await;
    created.map_err(|error| failure("creating the bucket", Box::new(error)))?;
    let store = jetstream.get_key_value(name).await;
    store.map_err(|error| failure("opening the bucket", Box::new(error)))
}

/// The stream of a KV bucket keeping one value per key, as KV clients expect it.
fn bucket_stream(name: &str) -> async_nats::jetstream::stream::Config {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        storage: StorageType::File,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Config::default()
    }
}

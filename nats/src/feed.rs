//! The JetStream feed: per projection partition, an ephemeral pull consumer without acks,
//! filtered on the relay's partition subjects and started right after the stream sequence
//! the read model recorded with its last committed batch.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Config as PullConfig, Stream as PullStream};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream as JsStream;
use async_nats::jetstream::{Context, Message};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tidemark::{Metadata, RecordedEvent, StreamId};
use tidemark_projections::{Delivery, Feed, FeedCursor, Incoming, ProjectionError, RogueMessage, Subscription};

use crate::headers::{EventHeaders, Headers};
use crate::signature::{MessageKey, Signature};
use crate::subject::SubjectScheme;

type Result<T, E = ProjectionError> = std::result::Result<T, E>;

/// Settings of the consumers a [`JetStreamFeed`] creates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// How long the server keeps a subscription's consumer once nobody pulls from it (a
    /// runner that was killed), before deleting it (default 30 s). Nothing waits for it:
    /// the next owner of the partition opens a consumer of its own.
    pub inactive_threshold: Duration,
    /// Messages requested per pull (default 1,000).
    pub pull_batch: usize,
    /// How long a batch waits for more messages once it has one (default 0: it takes what
    /// has already arrived, so batches grow under load and stay small when idle).
    pub linger: Duration,
    /// How often the server says it is there while it has nothing to deliver (default
    /// 1 s). Two missed in a row (a consumer lost with its node, a connection half gone)
    /// fail the subscription, and the runner subscribes again after its recorded cursor.
    pub heartbeat: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            inactive_threshold: Duration::from_secs(30),
            pull_batch: 1_000,
            linger: Duration::ZERO,
            heartbeat: Duration::from_secs(1),
        }
    }
}

impl ConsumerSettings {
    /// Sets how long an abandoned consumer stays on the server (at least one second).
    pub fn inactive_threshold(mut self, threshold: Duration) -> Self {
        self.inactive_threshold = threshold.max(Duration::from_secs(1));
        self
    }

    /// Sets the messages requested per pull (at least 1).
    pub fn pull_batch(mut self, messages: usize) -> Self {
        self.pull_batch = messages.max(1);
        self
    }

    /// Sets how long a batch waits for more messages once it has one.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets the idle heartbeat (between 100 ms and 10 s).
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat.clamp(Duration::from_millis(100), Duration::from_secs(10));
        self
    }
}

/// Partitioned subscriptions to the JetStream stream the relay publishes to.
#[derive(Debug, Clone)]
pub struct JetStreamFeed {
    jetstream: Context,
    stream: String,
    scheme: SubjectScheme,
    settings: ConsumerSettings,
    key: Option<MessageKey>,
}

impl JetStreamFeed {
    /// A feed of the JetStream stream `stream`, whose subjects follow `scheme` (the
    /// relay's scheme: the same prefix and number of partitions).
    pub fn new(jetstream: Context, stream: impl Into<String>, scheme: SubjectScheme) -> Self {
        Self { jetstream, stream: stream.into(), scheme, settings: ConsumerSettings::default(), key: None }
    }

    /// Checks each message's signature with `key`, the store's (see
    /// [`MessageKey::load`]): an event whose signature verifies was published, unchanged, by
    /// a relay of the store, and is taken in without asking the store whether it holds
    /// it, which spares the runner one statement per batch. A message with no signature,
    /// or one that does not verify, is checked against the store as it is without a key.
    pub fn with_message_key(mut self, key: MessageKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Replaces the consumer settings.
    pub fn with_settings(mut self, settings: ConsumerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The name of the durable consumer that runners before version 0.2 kept for
    /// `consumer` on `partition` (`<consumer>_p<N>`). A partition with no recorded cursor
    /// starts after that consumer's acknowledgement floor, when it still exists; nothing
    /// else uses it, and it can be deleted once every partition has committed a batch.
    pub fn durable_name(consumer: &str, partition: u32) -> String {
        format!("{consumer}_p{partition}")
    }

    /// The epoch of a stream: its creation time, in nanoseconds since 1970. A stream
    /// deleted and made again under the same name starts a new epoch, so cursors recorded
    /// against the old one are not taken for positions in the new one.
    pub fn epoch_of(info: &async_nats::jetstream::stream::Info) -> i64 {
        i64::try_from(info.created.unix_timestamp_nanos()).unwrap_or(i64::MAX)
    }

    /// Where a partition without a recorded cursor starts: after the acknowledgement floor
    /// of the durable consumer an earlier version kept (every message below it was
    /// committed before it was acknowledged), or at the beginning.
    async fn acknowledged_by_durable(&self, stream: &JsStream, consumer: &str, partition: u32) -> Result<Option<u64>> {
        match stream.consumer_info(Self::durable_name(consumer, partition)).await {
            Ok(info) => Ok(Some(info.ack_floor.stream_sequence).filter(|s| *s > 0)),
            Err(e) if matches!(e.kind(), ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::InvalidName) => {
                Ok(None)
            }
            Err(e) => Err(ProjectionError::broker("reading an earlier durable consumer")(e.into())),
        }
    }
}

/// A pull subscription to one partition: an ephemeral consumer without acks, checked for
/// gaps by its consumer sequence.
pub struct JetStreamSubscription {
    messages: PullStream,
    linger: Duration,
    scheme: SubjectScheme,
    partition: u32,
    key: Option<MessageKey>,
    epoch: i64,
    /// The consumer sequence of the last message taken in: every delivery is the next.
    delivered: u64,
    /// The consumer, deleted when the subscription is dropped.
    consumer: Option<(JsStream, String)>,
    /// An error met while taking in a batch without waiting, reported by the next call.
    deferred: Option<ProjectionError>,
}

impl std::fmt::Debug for JetStreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSubscription")
            .field("partition", &self.partition)
            .field("epoch", &self.epoch)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl Drop for JetStreamSubscription {
    fn drop(&mut self) {
        // Deleting the consumer at once spares the server keeping it until its inactive
        // threshold; if this cannot run (no runtime, server away), the threshold does it.
        let Some((stream, name)) = self.consumer.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }
}

impl Feed for JetStreamFeed {
    type Subscription = JetStreamSubscription;

    fn partitions(&self) -> u32 {
        self.scheme.partitions()
    }

    fn partition_of(&self, stream: &StreamId) -> u32 {
        self.scheme.partition_of(stream)
    }

    async fn subscribe(
        &self,
        consumer: &str,
        partition: u32,
        after: Option<FeedCursor>,
    ) -> Result<JetStreamSubscription> {
        let filter =
            self.scheme.partition_filter(partition).map_err(|e| ProjectionError::broker("subscribing")(e.into()))?;
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| ProjectionError::broker("looking up the JetStream stream")(e.into()))?;
        let epoch = Self::epoch_of(stream.cached_info());
        let start = match after {
            Some(cursor) => FeedCursor::sequence_in(Some(cursor), epoch),
            None => self.acknowledged_by_durable(&stream, consumer, partition).await?,
        };
        let deliver_policy = match start {
            Some(sequence) => DeliverPolicy::ByStartSequence { start_sequence: sequence.saturating_add(1) },
            None => DeliverPolicy::All,
        };
        let config = PullConfig {
            description: Some(format!("tidemark runner of {consumer}, partition {partition}")),
            filter_subject: filter,
            ack_policy: AckPolicy::None,
            deliver_policy,
            inactive_threshold: self.settings.inactive_threshold,
            num_replicas: 1,
            memory_storage: true,
            ..PullConfig::default()
        };
        let pull = stream
            .create_consumer(config)
            .await
            .map_err(|e| ProjectionError::broker("creating a consumer")(e.into()))?;
        let name = pull.cached_info().name.clone();
        let messages = pull
            .stream()
            .max_messages_per_batch(self.settings.pull_batch)
            .heartbeat(self.settings.heartbeat)
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| ProjectionError::broker("pulling from a consumer")(e.into()))?;
        tracing::debug!(consumer, partition, after = ?start, epoch, name = %name, "subscribed");
        Ok(JetStreamSubscription {
            messages,
            linger: self.settings.linger,
            scheme: self.scheme.clone(),
            partition,
            key: self.key.clone(),
            epoch,
            delivered: 0,
            consumer: Some((stream, name)),
            deferred: None,
        })
    }
}

impl JetStreamSubscription {
    /// Checks that `message` is the consumer's next delivery (a consumer without acks
    /// never delivers a message twice, so a gap means a lost one) and returns its cursor.
    fn next_in_order(&mut self, message: &Message) -> Result<FeedCursor> {
        let info = message.info().map_err(ProjectionError::broker("reading a message's sequence"))?;
        if info.consumer_sequence != self.delivered + 1 {
            let error = format!(
                "the consumer delivered its message {} after {}: messages in between were lost",
                info.consumer_sequence, self.delivered
            );
            return Err(ProjectionError::broker("pulling messages")(error.into()));
        }
        self.delivered = info.consumer_sequence;
        Ok(FeedCursor::new(self.epoch, info.stream_sequence))
    }

    /// Takes in the next pulled message: its place checked, then read into what the runner
    /// applies, at once. Read as each message comes (while the batch before it is applied,
    /// most of the time) rather than all together once the batch is complete, the messages'
    /// headers, subjects, signatures and payloads cost the batch no time of its own.
    fn take(&mut self, next: Pulled, into: &mut Delivery) -> Result<()> {
        let message = received(next)?;
        let cursor = self.next_in_order(&message)?;
        into.messages.push(incoming(&message, &self.scheme, self.partition, self.key.as_ref()));
        into.cursors.push(cursor);
        Ok(())
    }
}

impl Subscription for JetStreamSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Delivery> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let first = self.messages.next().await;
        let mut delivery = Delivery::with_capacity(max.max(1));
        self.take(first, &mut delivery)?;
        while delivery.len() < max.max(1) {
            match tokio::time::timeout(self.linger, self.messages.next()).await {
                Ok(next) => self.take(next, &mut delivery)?,
                Err(_) => break,
            }
        }
        Ok(delivery)
    }

    async fn next_batch_while<W>(&mut self, max: usize, busy: W) -> Option<Result<Delivery>>
    where
        W: Future<Output = ()> + Send,
    {
        if let Some(error) = self.deferred.take() {
            return Some(Err(error));
        }
        tokio::pin!(busy);
        let mut delivery = Delivery::with_capacity(max.max(1));
        while delivery.len() < max.max(1) {
            // Dropping `next` when `busy` finishes first loses nothing: the stream keeps
            // what it has not handed out.
            let next = tokio::select! {
                biased;
                next = self.messages.next() => next,
                () = &mut busy => break,
            };
            match self.take(next, &mut delivery) {
                Ok(()) => {}
                Err(e) if delivery.is_empty() => return Some(Err(e)),
                Err(e) => {
                    // First this batch; the error is reported by the next call.
                    self.deferred = Some(e);
                    break;
                }
            }
        }
        if delivery.is_empty() {
            return None;
        }
        Some(Ok(delivery))
    }
}

type Pulled = Option<Result<Message, async_nats::jetstream::consumer::pull::MessagesError>>;

fn received(next: Pulled) -> Result<Message> {
    match next {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(ProjectionError::broker("pulling messages")(e.into())),
        None => Err(ProjectionError::broker("pulling messages")("the message stream ended".into())),
    }
}

/// Reads a message the relay published back into an event, a reference to one, or a
/// rogue message: headers missing or invalid, a stream of another partition, a subject that
/// disagrees with the headers, or a payload that is not JSON. An event whose signature
/// verifies with `key` is taken as stored.
pub(crate) fn incoming(
    message: &Message,
    scheme: &SubjectScheme,
    partition: u32,
    key: Option<&MessageKey>,
) -> Incoming {
    let subject = message.subject.as_str();
    let rogue = |reason: String, claim: Option<&EventHeaders>, recover: bool| {
        let key = match message.info() {
            Ok(info) => format!("seq {}", info.stream_sequence),
            Err(_) => format!("subject {subject}"),
        };
        let mut message = RogueMessage::new(key, partition, subject, reason);
        if let Some(h) = claim {
            message = message.claiming(h.stream_id.clone(), h.stream_version, h.event_id);
        }
        Incoming::Rogue { message: Box::new(message), recover }
    };
    let empty = async_nats::HeaderMap::new();
    let read = Headers::read(message.headers.as_ref().unwrap_or(&empty));
    let headers = match EventHeaders::read(&read) {
        Ok(headers) => headers,
        Err(e) => return rogue(format!("not a tidemark event: {e}"), None, false),
    };
    let home = scheme.partition_of(&headers.stream_id);
    if home != partition {
        let reason = format!("stream {} belongs to partition {home}, not {partition}", headers.stream_id);
        return rogue(reason, Some(&headers), false);
    }
    match scheme.is_subject(subject, &headers.stream_id, &headers.event_type, headers.schema_version) {
        Ok(true) => {}
        Ok(false) => {
            let expected = scheme.subject(&headers.stream_id, &headers.event_type, headers.schema_version);
            let reason = format!("the subject disagrees with the headers, which give {}", expected.unwrap_or_default());
            return rogue(reason, Some(&headers), true);
        }
        Err(e) => return rogue(format!("the headers give no valid subject: {e}"), Some(&headers), true),
    }
    if headers.downcast_of.is_some() {
        return Incoming::Copy { event_id: headers.event_id };
    }
    if headers.thin {
        return Incoming::Reference {
            event_id: headers.event_id,
            stream_id: headers.stream_id,
            stream_version: headers.stream_version,
        };
    }
    let payload = std::str::from_utf8(&message.payload)
        .map_err(|e| e.to_string())
        .and_then(|text| RawValue::from_string(text.to_owned()).map_err(|e| e.to_string()));
    let payload = match payload {
        Ok(payload) => payload,
        Err(e) => return rogue(format!("the payload is not JSON: {e}"), Some(&headers), true),
    };
    let mut metadata = Metadata::new();
    metadata.correlation_id = headers.correlation_id;
    metadata.causation_id = headers.causation_id;
    metadata.user = headers.user.clone();
    metadata.tenant = headers.tenant.clone();
    crate::trace_headers::take_read_trace_context(&read, &mut metadata);
    let event = RecordedEvent {
        event_id: headers.event_id,
        stream_id: headers.stream_id,
        stream_version: headers.stream_version,
        position: headers.position,
        event_type: headers.event_type,
        schema_version: headers.schema_version,
        payload,
        metadata,
        recorded_at: headers.recorded_at,
    };
    let Some(key) = key else { return Incoming::Untrusted(event) };
    let signature = key.verify_read(&read, &message.payload);
    let counted = match signature {
        Signature::Valid => "valid",
        Signature::Missing => "missing",
        _ => "invalid",
    };
    metrics::counter!("tidemark_feed_signatures_total", "signature" => counted).increment(1);
    match signature {
        Signature::Valid => Incoming::Trusted(event),
        Signature::Missing => Incoming::Untrusted(event),
        _ => {
            if warn_now() {
                tracing::warn!(partition, event_id = %event.event_id, subject,
                    "a message's signature does not verify with the store's key; checking it against the store \
                     (more within a minute are only counted, in tidemark_feed_signatures_total)");
            }
            Incoming::Untrusted(event)
        }
    }
}

/// Whether a signature that does not verify is logged: at most once a minute per process,
/// so that a stream of messages signed with an older key (or by another store) does not
/// write a line for each.
fn warn_now() -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    (last == 0 || now >= last + 60) && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

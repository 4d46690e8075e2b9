//! The JetStream feed: one durable pull consumer per projection partition, filtered on the
//! relay's partition subjects.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Config as PullConfig, Stream as PullStream};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::{AckKind, Context, Message};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tidemark::{Metadata, RecordedEvent, StreamId};
use tidemark_nats::{EventHeaders, MessageKey, Signature, SubjectScheme};

use crate::error::{ProjectionError, Result};
use crate::feed::{Feed, Incoming, Subscription};
use crate::read_models::RogueMessage;

/// Settings of the consumers a [`JetStreamFeed`] creates.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// How long the server waits for an acknowledgement before delivering a message again
    /// (default 30 s).
    pub ack_wait: Duration,
    /// Most messages delivered and not yet acknowledged per consumer (default 20,000).
    pub max_ack_pending: i64,
    /// Messages requested per pull (default 1,000).
    pub pull_batch: usize,
    /// How long a batch waits for more messages once it has one (default 0: it takes what
    /// has already arrived, so batches grow under load and stay small when idle).
    pub linger: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self { ack_wait: Duration::from_secs(30), max_ack_pending: 20_000, pull_batch: 1_000, linger: Duration::ZERO }
    }
}

/// Partitioned durable subscriptions to the JetStream stream the relay publishes to.
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

    /// The durable consumer name of `consumer` on `partition`.
    pub fn durable_name(consumer: &str, partition: u32) -> String {
        format!("{consumer}_p{partition}")
    }
}

/// A pull subscription to one partition.
pub struct JetStreamSubscription {
    messages: PullStream,
    linger: Duration,
    scheme: SubjectScheme,
    partition: u32,
    key: Option<MessageKey>,
    /// An error met while taking in a batch without waiting, reported by the next call.
    deferred: Option<ProjectionError>,
}

impl std::fmt::Debug for JetStreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSubscription").field("linger", &self.linger).finish_non_exhaustive()
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

    async fn subscribe(&self, consumer: &str, partition: u32) -> Result<JetStreamSubscription> {
        let filter =
            self.scheme.partition_filter(partition).map_err(|e| ProjectionError::broker("subscribing")(e.into()))?;
        let name = Self::durable_name(consumer, partition);
        let config = PullConfig {
            durable_name: Some(name.clone()),
            filter_subject: filter,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: self.settings.ack_wait,
            max_ack_pending: self.settings.max_ack_pending,
            ..PullConfig::default()
        };
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| ProjectionError::broker("looking up the JetStream stream")(e.into()))?;
        let pull = stream
            .get_or_create_consumer(&name, config)
            .await
            .map_err(|e| ProjectionError::broker("creating a durable consumer")(e.into()))?;
        let messages = pull
            .stream()
            .max_messages_per_batch(self.settings.pull_batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| ProjectionError::broker("pulling from a consumer")(e.into()))?;
        Ok(JetStreamSubscription {
            messages,
            linger: self.settings.linger,
            scheme: self.scheme.clone(),
            partition,
            key: self.key.clone(),
            deferred: None,
        })
    }
}

impl Subscription for JetStreamSubscription {
    type Receipt = Vec<Message>;

    async fn next_batch(&mut self, max: usize) -> Result<(Vec<Incoming>, Self::Receipt)> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let first = self.messages.next().await;
        let mut messages = vec![received(first)?];
        while messages.len() < max.max(1) {
            match tokio::time::timeout(self.linger, self.messages.next()).await {
                Ok(next) => messages.push(received(next)?),
                Err(_) => break,
            }
        }
        let incoming: Vec<Incoming> =
            messages.iter().map(|m| incoming(m, &self.scheme, self.partition, self.key.as_ref())).collect();
        Ok((incoming, messages))
    }

    async fn next_batch_while<W>(&mut self, max: usize, busy: W) -> Option<Result<(Vec<Incoming>, Self::Receipt)>>
    where
        W: Future<Output = ()> + Send,
    {
        if let Some(error) = self.deferred.take() {
            return Some(Err(error));
        }
        tokio::pin!(busy);
        let mut messages = Vec::new();
        while messages.len() < max.max(1) {
            // Dropping `next` when `busy` finishes first loses nothing: the stream keeps
            // what it has not handed out.
            let next = tokio::select! {
                biased;
                next = self.messages.next() => next,
                () = &mut busy => break,
            };
            match received(next) {
                Ok(message) => messages.push(message),
                Err(e) if messages.is_empty() => return Some(Err(e)),
                Err(e) => {
                    // First this batch; the error is reported by the next call.
                    self.deferred = Some(e);
                    break;
                }
            }
        }
        if messages.is_empty() {
            return None;
        }
        let incoming: Vec<Incoming> =
            messages.iter().map(|m| incoming(m, &self.scheme, self.partition, self.key.as_ref())).collect();
        Some(Ok((incoming, messages)))
    }

    async fn ack(&mut self, receipt: Self::Receipt) -> Result<()> {
        // Rogue messages are acknowledged like events: they are parked in the read models'
        // database with the batch, so the broker has nothing more to deliver. The batch is
        // committed: the acks go out from a task of their own while the next batch is
        // taken in (a lost ack only means a redelivery, which the seen versions skip).
        let partition = self.partition;
        tokio::spawn(async move {
            for message in receipt {
                if let Err(error) = message.ack_with(AckKind::Ack).await {
                    tracing::warn!(partition, %error, "acknowledging a committed message failed; expecting a redelivery");
                    return;
                }
            }
        });
        Ok(())
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
            message = message.claiming(h.stream_id.clone(), h.stream_version.0, h.event_id);
        }
        Incoming::Rogue { message: Box::new(message), recover }
    };
    let headers = match EventHeaders::parse(message.headers.as_ref()) {
        Ok(headers) => headers,
        Err(e) => return rogue(format!("not a tidemark event: {e}"), None, false),
    };
    let home = scheme.partition_of(&headers.stream_id);
    if home != partition {
        let reason = format!("stream {} belongs to partition {home}, not {partition}", headers.stream_id);
        return rogue(reason, Some(&headers), false);
    }
    match scheme.subject(&headers.stream_id, &headers.event_type, headers.schema_version) {
        Ok(expected) if expected == subject => {}
        Ok(expected) => {
            let reason = format!("the subject disagrees with the headers, which give {expected}");
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
    let Some(key) = key else { return Incoming::Event(event) };
    let signature = key.verify(message.headers.as_ref(), &message.payload);
    let counted = match signature {
        Signature::Valid => "valid",
        Signature::Missing => "missing",
        _ => "invalid",
    };
    metrics::counter!("tidemark_feed_signatures_total", "signature" => counted).increment(1);
    match signature {
        Signature::Valid => Incoming::Stored(event),
        Signature::Missing => Incoming::Event(event),
        _ => {
            if warn_now() {
                tracing::warn!(partition, event_id = %event.event_id, subject,
                    "a message's signature does not verify with the store's key; checking it against the store \
                     (more within a minute are only counted, in tidemark_feed_signatures_total)");
            }
            Incoming::Event(event)
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

//! Pipelined publishing of one batch, with a bounded window of outstanding PubAcks.

use std::collections::VecDeque;

use async_nats::header::NATS_EXPECTED_LAST_SEQUENCE;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::Context;
use async_nats::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tidemark::{LogPosition, RecordedEvent};

use crate::config::RelayConfig;
use crate::downcast::{DowncastCopy, Downcasts, Failure};
use crate::error::RelayError;
use crate::headers::EventHeaders;
use crate::signature::MessageKey;
use crate::status::Stats;

/// A batch that failed part-way: the error, and how far it was acknowledged in log order.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The position of the last event acknowledged with every event before it.
    pub acked_to: Option<LogPosition>,
    /// What went wrong.
    pub error: RelayError,
}

/// Publishes events to JetStream.
#[derive(Debug)]
pub(crate) struct Publisher<'a> {
    pub jetstream: &'a Context,
    pub config: &'a RelayConfig,
    pub downcasts: &'a Downcasts,
    pub stats: &'a Stats,
    /// What every message is signed with.
    pub key: &'a MessageKey,
}

/// One message to publish: an event, or a downcast copy of one.
struct Message {
    subject: String,
    headers: EventHeaders,
    payload: Bytes,
}

/// A message awaiting its PubAck.
struct Sent<'e> {
    event: &'e RecordedEvent,
    copy: bool,
    /// Whether it is the last message of its event: once it is acknowledged, so is the event.
    completes: bool,
    ack: PublishAckFuture,
}

/// The publishes of a batch in flight, oldest first.
struct Window<'e> {
    pending: VecDeque<Sent<'e>>,
    /// The stream sequence the next message expects to follow (`Nats-Expected-Last-Sequence`):
    /// the sequence of the batch's first message JetStream stored, plus one per message sent
    /// since. `None` until a message of the batch was stored (not a duplicate).
    expected_last: Option<u64>,
    /// The last event acknowledged with all its messages and every event before it.
    acked_to: Option<LogPosition>,
}

impl Publisher<'_> {
    /// Publishes `events` in order, with at most `max_in_flight` PubAcks outstanding, and
    /// returns once every one is acknowledged (a duplicate counts as acknowledged). Each
    /// event is followed by its downcast copies, if active downcasters have any; an event
    /// counts as acknowledged once its copies are too.
    ///
    /// The batch's first message is sent alone, without a condition (everything before it is
    /// acknowledged), and its PubAck gives its stream sequence; so are the messages after it
    /// while JetStream answers that they are duplicates. Every later message carries
    /// `Nats-Expected-Last-Sequence`: the sequence its predecessor (event or copy) gets if
    /// JetStream stores the messages in the order they were sent, so JetStream stores it only
    /// right after that predecessor. Without it, a reconnect can lose the start of a window of
    /// publishes while the client flushes the rest of it afterwards: later events would be
    /// stored before earlier ones, which a retry then appends after them. (The relay used
    /// `Nats-Expected-Last-Msg-Id` before: in a cluster, every replica checks that header
    /// against its own last message id as it applies the message, and a replica that had
    /// just caught up after a restart refused messages the leader had acknowledged, and lost
    /// them from its copy. A sequence is checked by the stream's leader only.)
    pub(crate) async fn publish(&self, events: &[RecordedEvent]) -> Result<(), Failed> {
        let span = tracing::debug_span!(
            "relay_batch",
            relay = %self.config.name,
            events = events.len(),
            first = tracing::field::Empty,
            last = tracing::field::Empty,
        );
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            span.record("first", tracing::field::display(first.position));
            span.record("last", tracing::field::display(last.position));
        }
        tracing::Instrument::instrument(self.publish_batch(events), span).await
    }

    async fn publish_batch(&self, events: &[RecordedEvent]) -> Result<(), Failed> {
        let now = Utc::now();
        self.downcasts.log_expired(now, &self.config.name);
        let pending = VecDeque::with_capacity(self.config.max_in_flight);
        let mut window = Window { pending, expected_last: None, acked_to: None };
        for event in events {
            if let Err(error) = self.publish_event(event, now, &mut window).await {
                return Err(Failed { acked_to: window.acked_to, error });
            }
        }
        while let Some(sent) = window.pending.pop_front() {
            if let Err(error) = self.settle(sent, &mut window.acked_to).await {
                return Err(Failed { acked_to: window.acked_to, error });
            }
        }
        Ok(())
    }

    /// Sends an event and its downcast copies. A copy that cannot be made, or is too large
    /// to send, is logged, counted and left out: the event is published without it.
    async fn publish_event<'e>(
        &self,
        event: &'e RecordedEvent,
        now: DateTime<Utc>,
        window: &mut Window<'e>,
    ) -> Result<(), RelayError> {
        self.send(event, self.message(event)?, window).await?;
        self.stats.published();
        for copy in self.downcasts.active(event, now) {
            match self.copy_message(&copy)? {
                Err(failure) => self.skip(&copy, &failure),
                Ok(message) => match self.send(event, message, window).await {
                    Ok(()) => {}
                    Err(RelayError::TooLarge { source, .. }) => self.skip(&copy, &source),
                    Err(error) => return Err(error),
                },
            }
        }
        match window.pending.back_mut() {
            Some(last) if last.event.event_id == event.event_id => last.completes = true,
            // Every message of the event is acknowledged already.
            _ => self.completed(event, &mut window.acked_to),
        }
        Ok(())
    }

    fn skip(&self, copy: &DowncastCopy<'_>, reason: &dyn std::error::Error) {
        copy.log_skipped(&self.config.name, reason);
        self.stats.downcast_failed();
    }

    /// The message of a stored event.
    fn message(&self, event: &RecordedEvent) -> Result<Message, RelayError> {
        let subject = self.config.subjects.subject_of(event).map_err(|source| RelayError::Unpublishable {
            event_id: event.event_id,
            position: event.position,
            source,
        })?;
        let thin = self.config.thin_event_types.contains(&event.event_type);
        let headers = EventHeaders::of(event).with_thin(thin);
        let payload = if thin { Bytes::new() } else { Bytes::copy_from_slice(event.payload.get().as_bytes()) };
        Ok(Message { subject, headers, payload })
    }

    /// The message of a downcast copy, or why the downcast failed.
    fn copy_message(&self, copy: &DowncastCopy<'_>) -> Result<Result<Message, Failure>, RelayError> {
        let (event, to) = (copy.event, copy.downcaster.to_version());
        let subject = self.config.subjects.subject(&event.stream_id, &event.event_type, to).map_err(|source| {
            RelayError::Unpublishable { event_id: event.event_id, position: event.position, source }
        })?;
        let headers = EventHeaders::of(event).downcast_to(to);
        Ok(copy.payload().map(|payload| Message { subject, headers, payload }))
    }

    /// Sends a message once the window has room, expecting the previous one's sequence; until
    /// a message of the batch is stored, sends alone and waits for the PubAck.
    async fn send<'e>(
        &self,
        event: &'e RecordedEvent,
        message: Message,
        window: &mut Window<'e>,
    ) -> Result<(), RelayError> {
        if window.pending.len() >= self.config.max_in_flight {
            if let Some(oldest) = window.pending.pop_front() {
                self.settle(oldest, &mut window.acked_to).await?;
            }
        }
        let (event_id, position) = (event.event_id, event.position);
        let mut headers = message.headers.to_header_map();
        self.key.sign(&mut headers, &message.payload);
        crate::trace_headers::put_trace_context(&mut headers, &event.metadata);
        let expected_last = window.expected_last;
        if let Some(last) = expected_last {
            headers.insert(NATS_EXPECTED_LAST_SEQUENCE, HeaderValue::from(last));
        }
        let ack =
            self.jetstream.publish_with_headers(message.subject, headers, message.payload).await.map_err(|source| {
                if source.kind() == PublishErrorKind::MaxPayloadExceeded {
                    RelayError::TooLarge { event_id, position, source }
                } else {
                    RelayError::Publish { event_id, position, source }
                }
            })?;
        let copy = message.headers.downcast_of.is_some();
        let sent = Sent { event, copy, completes: false, ack };
        match expected_last {
            Some(last) => {
                window.expected_last = Some(last + 1);
                window.pending.push_back(sent);
            }
            None => {
                // Nothing is in flight (the batch's first message, or every one before was
                // a duplicate): its PubAck anchors the sequences of the ones after it.
                let ack = self.settle(sent, &mut window.acked_to).await?;
                window.expected_last = (!ack.duplicate).then_some(ack.sequence);
            }
        }
        Ok(())
    }

    async fn settle(
        &self,
        sent: Sent<'_>,
        acked_to: &mut Option<LogPosition>,
    ) -> Result<async_nats::jetstream::publish::PublishAck, RelayError> {
        let (event_id, position) = (sent.event.event_id, sent.event.position);
        let ack = sent.ack.await.map_err(|source| RelayError::Publish { event_id, position, source })?;
        if sent.copy {
            self.stats.downcast_acked();
        } else {
            self.stats.acked(ack.duplicate);
        }
        if sent.completes {
            self.completed(sent.event, acked_to);
        }
        Ok(ack)
    }

    /// An event acknowledged with all its messages and every event before it.
    fn completed(&self, event: &RecordedEvent, acked_to: &mut Option<LogPosition>) {
        *acked_to = Some(event.position);
        self.stats.completed(event.position);
        let lag = (Utc::now() - event.recorded_at).to_std().unwrap_or_default();
        metrics::histogram!("tidemark_relay_lag_seconds").record(lag.as_secs_f64());
    }
}

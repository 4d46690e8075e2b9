//! Pipelined publishing of one batch, with a bounded window of outstanding PubAcks.

use std::collections::VecDeque;

use async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::Context;
use bytes::Bytes;
use tidemark::{EventId, LogPosition, RecordedEvent};

use crate::config::RelayConfig;
use crate::error::RelayError;
use crate::headers::EventHeaders;
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
    pub stats: &'a Stats,
}

impl Publisher<'_> {
    /// Publishes `events` in order, with at most `max_in_flight` PubAcks outstanding, and
    /// returns once every one is acknowledged (a duplicate counts as acknowledged).
    ///
    /// Every event after the first names its predecessor in `Nats-Expected-Last-Msg-Id`,
    /// so JetStream stores it only right after that predecessor (or drops it as a
    /// duplicate). Without it, a reconnect can lose the start of a window of publishes
    /// while the client flushes the rest of it afterwards: later events would be stored
    /// before earlier ones, which a retry then appends after them. The first event needs
    /// no condition: everything before it is acknowledged.
    pub async fn publish(&self, events: &[RecordedEvent]) -> Result<(), Failed> {
        let window = self.config.max_in_flight;
        let mut pending: VecDeque<(&RecordedEvent, PublishAckFuture)> = VecDeque::with_capacity(window);
        let mut acked_to = None;
        let mut previous = None;
        for event in events {
            if pending.len() >= window {
                if let Some((oldest, ack)) = pending.pop_front() {
                    acked_to = Some(self.settle(oldest, ack).await.map_err(|error| Failed { acked_to, error })?);
                }
            }
            let ack = self.send(event, previous).await.map_err(|error| Failed { acked_to, error })?;
            pending.push_back((event, ack));
            previous = Some(event.event_id);
        }
        while let Some((event, ack)) = pending.pop_front() {
            acked_to = Some(self.settle(event, ack).await.map_err(|error| Failed { acked_to, error })?);
        }
        Ok(())
    }

    async fn send(&self, event: &RecordedEvent, previous: Option<EventId>) -> Result<PublishAckFuture, RelayError> {
        let (event_id, position) = (event.event_id, event.position);
        let subject = self.config.subjects.subject_of(event).map_err(|source| RelayError::Unpublishable {
            event_id,
            position,
            source,
        })?;
        let thin = self.config.thin_event_types.contains(&event.event_type);
        let mut headers = EventHeaders::of(event).with_thin(thin).to_header_map();
        if let Some(previous) = previous {
            headers.insert(NATS_EXPECTED_LAST_MESSAGE_ID, previous.to_string().as_str());
        }
        let payload = if thin { Bytes::new() } else { Bytes::copy_from_slice(event.payload.get().as_bytes()) };
        let ack = self.jetstream.publish_with_headers(subject, headers, payload).await.map_err(|source| {
            if source.kind() == PublishErrorKind::MaxPayloadExceeded {
                RelayError::TooLarge { event_id, position, source }
            } else {
                RelayError::Publish { event_id, position, source }
            }
        })?;
        self.stats.published();
        Ok(ack)
    }

    async fn settle(&self, event: &RecordedEvent, ack: PublishAckFuture) -> Result<LogPosition, RelayError> {
        let (event_id, position) = (event.event_id, event.position);
        let ack = ack.await.map_err(|source| RelayError::Publish { event_id, position, source })?;
        self.stats.acked(position, ack.duplicate);
        Ok(position)
    }
}

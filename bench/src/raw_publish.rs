//! F3's raw baseline (`raw-js`): the stored events, read into memory before the clock
//! starts, published with plain async-nats the way the relay publishes them.

use std::collections::VecDeque;

use anyhow::{Context as _, Result};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::Context;
use bytes::Bytes;
use tidemark::{EventStore, LogPosition, RecordedEvent};
use tidemark_nats::{EventHeaders, SubjectScheme};
use tidemark_postgres::PgEventStore;

/// The first `count` events of the log, read before the raw baseline is timed.
pub(crate) async fn load_events(store: &PgEventStore, count: usize) -> Result<Vec<RecordedEvent>> {
    let mut events = Vec::with_capacity(count);
    let mut after = LogPosition::START;
    while events.len() < count {
        let batch = store.read_log(after, 5000.min(count - events.len())).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        events.extend(batch);
    }
    Ok(events)
}

/// The raw baseline: publishes `events` with plain async-nats, each with the relay's
/// subject shape, headers (`Nats-Msg-Id` included) and payload bytes, built per publish
/// as the relay builds them, with at most `window` PubAcks outstanding (awaited oldest
/// first, as the relay does). No PostgreSQL, no checkpoint, no chaining header (`Nats-Expected-Last-Sequence`).
/// Returns the number of duplicate PubAcks (0 on a fresh stream).
pub(crate) async fn publish_raw(
    js: &Context,
    scheme: &SubjectScheme,
    events: &[RecordedEvent],
    window: usize,
) -> Result<u64> {
    let mut pending: VecDeque<PublishAckFuture> = VecDeque::with_capacity(window);
    let mut duplicates = 0;
    for event in events {
        if pending.len() >= window {
            if let Some(ack) = pending.pop_front() {
                duplicates += u64::from(ack.await.context("raw publish: PubAck")?.duplicate);
            }
        }
        let subject = scheme.subject_of(event)?;
        let headers = EventHeaders::of(event).to_header_map();
        let payload = Bytes::copy_from_slice(event.payload.get().as_bytes());
        pending.push_back(js.publish_with_headers(subject, headers, payload).await.context("raw publish")?);
    }
    while let Some(ack) = pending.pop_front() {
        duplicates += u64::from(ack.await.context("raw publish: PubAck")?.duplicate);
    }
    Ok(duplicates)
}

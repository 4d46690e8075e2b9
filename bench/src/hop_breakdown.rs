//! F6's per-hop breakdown. For each event measured, JetStream's own time stamp of its
//! message (set when the server stored it) splits the end-to-end latency into the store
//! and relay hop (the send returned → the message stored) and the runner hop (stored →
//! the read-model row visible). Read from the stream after the measurement, so the
//! breakdown costs the pipelines nothing while they are timed.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use async_nats::jetstream::Context;
use futures_util::{StreamExt as _, TryStreamExt as _};
use hdrhistogram::Histogram;
use tidemark_nats::HEADER_STREAM_ID;
use tokio::time::Instant;

use crate::runner::histogram;
use crate::visible::Trace;

/// Lookups in flight while the stream is read.
const LOOKUPS: usize = 32;

/// The two hops of the events measured (µs), and how many events had no message found.
#[derive(Debug)]
pub(crate) struct Hops {
    pub to_nats: Histogram<u64>,
    pub to_visible: Histogram<u64>,
    pub unmatched: usize,
}

/// The stream's last sequence number now: the messages of a measurement started after
/// this call come after it.
pub(crate) async fn last_sequence(js: &Context, stream: &str) -> Result<u64> {
    let mut stream = js.get_stream(stream).await.with_context(|| format!("looking up stream {stream}"))?;
    let info = stream.info().await.context("reading the stream's state")?;
    Ok(info.state.last_sequence)
}

/// The hops of `traces`, from the messages stored in `stream` after sequence `after`.
pub(crate) async fn breakdown(js: &Context, stream: &str, after: u64, traces: &[Trace]) -> Result<Hops> {
    let last = last_sequence(js, stream).await?;
    let handle = js.get_stream(stream).await.with_context(|| format!("looking up stream {stream}"))?;
    let stored: HashMap<String, SystemTime> = futures_util::stream::iter(after + 1..=last)
        .map(|seq| {
            let handle = &handle;
            async move {
                let message = handle.get_raw_message(seq).await.with_context(|| format!("reading message {seq}"))?;
                let stream_id = message.headers.get(HEADER_STREAM_ID).map(|v| v.as_str().to_owned());
                let nanos = u64::try_from(message.time.unix_timestamp_nanos()).unwrap_or(0);
                anyhow::Ok(stream_id.map(|id| (id, UNIX_EPOCH + Duration::from_nanos(nanos))))
            }
        })
        .buffer_unordered(LOOKUPS)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;
    // Wall-clock time stamps to this process's monotonic clock (one machine, one clock).
    let (now, wall) = (Instant::now(), SystemTime::now());
    let to_instant = |at: SystemTime| match wall.duration_since(at) {
        Ok(ago) => now.checked_sub(ago),
        Err(ahead) => Some(now + ahead.duration()),
    };
    let (mut to_nats, mut to_visible, mut unmatched) = (histogram()?, histogram()?, 0);
    for trace in traces {
        let Some(at) = stored.get(&trace.stream).copied().and_then(to_instant) else {
            unmatched += 1;
            continue;
        };
        to_nats.saturating_record(micros(at.saturating_duration_since(trace.appended)));
        to_visible.saturating_record(micros(trace.visible.saturating_duration_since(at)));
    }
    Ok(Hops { to_nats, to_visible, unmatched })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

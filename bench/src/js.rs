//! The NATS side of F3: run-unique names, the raw JetStream publish baseline, and what
//! /proc says about nats-server's CPU and this process's memory.

use std::collections::VecDeque;

use anyhow::{Context as _, Result};
use async_nats::jetstream::context::{ContextBuilder, PublishAckFuture};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use tidemark::{EventStore, LogPosition, RecordedEvent};
use tidemark_nats::{EventHeaders, RelayConfig, SubjectScheme};
use tidemark_postgres::PgEventStore;

use crate::cpu::process_ticks;

/// JetStream streams and subject prefixes of one run, unique so that runs never share
/// a stream (both streams are deleted at the end).
#[derive(Debug, Clone)]
pub struct Names {
    pub relay_stream: String,
    pub relay_prefix: String,
    pub raw_stream: String,
    pub raw_prefix: String,
    /// F4's streams: one per partition count, `<f4_stream>_P<n>`.
    pub f4_stream: String,
    f4_prefix: String,
    /// F6: tidemark's pipeline and the raw one.
    pub f6_stream: String,
    pub f6_prefix: String,
    pub f6_raw_stream: String,
    pub f6_raw_prefix: String,
}

impl Names {
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..12];
        Self {
            relay_stream: format!("TMBENCH_F3_{id}"),
            relay_prefix: format!("tmbench.f3-{id}"),
            raw_stream: format!("TMBENCH_RAW_{id}"),
            raw_prefix: format!("tmbench.raw-{id}"),
            f4_stream: format!("TMBENCH_F4_{id}"),
            f4_prefix: format!("tmbench.f4-{id}"),
            f6_stream: format!("TMBENCH_F6_{id}"),
            f6_prefix: format!("tmbench.f6-{id}"),
            f6_raw_stream: format!("TMBENCH_F6RAW_{id}"),
            f6_raw_prefix: format!("tmbench.f6raw-{id}"),
        }
    }

    /// F4's stream for `partitions` partitions.
    pub fn f4_stream(&self, partitions: u32) -> String {
        format!("{}_P{partitions}", self.f4_stream)
    }

    /// F4's subject prefix for `partitions` partitions.
    pub fn f4_prefix(&self, partitions: u32) -> String {
        format!("{}-p{partitions}", self.f4_prefix)
    }
}

/// Deletes the run's streams, those that exist; reports (but does not fail on) errors.
pub async fn delete_streams(nats_url: &str, names: &Names) {
    let Ok(client) = async_nats::connect(nats_url).await else { return };
    let js = async_nats::jetstream::new(client);
    let mut streams = vec![
        names.relay_stream.clone(),
        names.raw_stream.clone(),
        names.f6_stream.clone(),
        names.f6_raw_stream.clone(),
    ];
    let mut all = js.stream_names();
    while let Some(Ok(name)) = all.next().await {
        if name.starts_with(&names.f4_stream) {
            streams.push(name);
        }
    }
    for stream in &streams {
        if js.get_stream(stream).await.is_ok() {
            if let Err(error) = js.delete_stream(stream).await {
                eprintln!("could not delete JetStream stream {stream}: {error}");
            }
        }
    }
}

/// A JetStream context set up as `NatsRelay::new` sets up its own: the relay's publish
/// timeout, and at most twice its PubAck window pending in the client.
pub fn context(client: async_nats::Client, config: &RelayConfig) -> Context {
    ContextBuilder::new()
        .timeout(config.publish_timeout)
        .ack_timeout(config.publish_timeout)
        .max_ack_inflight(config.max_in_flight.saturating_mul(2))
        .build(client)
}

/// The first `count` events of the log, read before the raw baseline is timed.
pub async fn load_events(store: &PgEventStore, count: usize) -> Result<Vec<RecordedEvent>> {
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
pub async fn publish_raw(js: &Context, scheme: &SubjectScheme, events: &[RecordedEvent], window: usize) -> Result<u64> {
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

/// Forwards each message of `subscription` that carries a `Nats-Msg-Id` as (that id, when
/// it arrived), until the receiver is dropped; abort the task to stop it sooner.
pub fn arrivals(
    mut subscription: async_nats::Subscriber,
) -> (tokio::task::JoinHandle<()>, tokio::sync::mpsc::UnboundedReceiver<(String, tokio::time::Instant)>) {
    let (tx, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let at = tokio::time::Instant::now();
            let id = message.headers.as_ref().and_then(|h| h.get(tidemark_nats::HEADER_MSG_ID));
            if let Some(id) = id {
                if tx.send((id.as_str().to_owned(), at)).is_err() {
                    break;
                }
            }
        }
    });
    (listening, arrivals)
}

/// CPU ticks (utime + stime) of every process named `nats-server` on this machine.
pub fn nats_server_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "nats-server"))
        .map(|e| process_ticks(&e.file_name().to_string_lossy()))
        .sum()
}

/// This process's resident set now and its high-water mark, in KiB (/proc/self/status).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn memory() -> Memory {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Memory::default() };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") }
}

/// Resets this process's high-water mark (VmHWM) to its resident set now, so that a later
/// [`memory`] reads the peak since this call. Returns whether the kernel took the reset.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory() {
        let m = memory();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        // A 64 MiB allocation, touched and freed, raises the peak; a reset brings it down.
        let big = vec![1u8; 64 << 20];
        assert_eq!(big.iter().map(|b| u64::from(*b)).sum::<u64>(), 64 << 20);
        drop(big);
        let raised = memory().hwm_kib;
        assert!(raised >= m.rss_kib + (60 << 10), "{raised} KiB after touching 64 MiB");
        assert!(reset_peak(), "the kernel refused to reset VmHWM");
        assert!(memory().hwm_kib < raised, "VmHWM did not come down after the reset");
        let names = Names::new();
        assert!(SubjectScheme::new(names.f4_prefix(4), 4).is_ok());
        assert!(SubjectScheme::new(names.relay_prefix, 16).is_ok());
        assert!(SubjectScheme::new(names.raw_prefix, 16).is_ok());
    }
}

//! F3's raw lag baseline (`raw-lag`): stored events published one by one with plain
//! async-nats at F3-lag's rate, open loop, each timed from the publish call to its arrival
//! on a core NATS subscription of the stream's subjects. F3-lag's target is a multiple of
//! this figure's p99: what the broker and the client cost on this machine at this rate.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use tidemark::RecordedEvent;
use tidemark_nats::{EventHeaders, RelayConfig, SubjectScheme, HEADER_MSG_ID};
use tokio::time::Instant;
use uuid::Uuid;

use crate::cpu::{nats_server_ticks, CpuMark};
use crate::figure::{Counted, Figure};
use crate::jetstream::{self, Names};
use crate::relay::{sample, usage};
use crate::runner::histogram;
use crate::scenarios::Suite;

/// Longest wait, after the last publish, for every message to arrive.
const GRACE: Duration = Duration::from_secs(10);

impl Suite<'_> {
    /// Publishes `events` (cycled, each under a fresh message id) at `settings.lag_rate` for
    /// `settings.lag_window` into the raw stream of `names` (created by the caller).
    pub(crate) async fn raw_lag(
        &self,
        client: &async_nats::Client,
        names: &Names,
        events: &[RecordedEvent],
    ) -> Result<Figure> {
        let (rate, window) = (self.settings.lag_rate, self.settings.lag_window);
        if events.is_empty() {
            bail!("raw lag: no stored events to publish");
        }
        eprintln!("measuring raw JetStream lag: {rate} events/s for {window:?}");
        let config = RelayConfig::default();
        let js = jetstream::context(client.clone(), &config);
        let scheme = SubjectScheme::new(&names.raw_prefix, 16)?;
        let subscription = client.subscribe(scheme.all_filter()).await?;
        client.flush().await?;
        let (listening, mut arrivals) = jetstream::arrivals(subscription);
        let (cpu, nats) = (CpuMark::take(self.db, "tmb-no-backends").await, nats_server_ticks());
        let started = Instant::now();
        let step = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut arriving = crate::arrivals::every(started, step, started + window)?;
        let (mut sent, mut acks) = (HashMap::new(), tokio::task::JoinSet::new());
        for event in events.iter().cycle() {
            if arriving.recv().await.is_none() {
                break;
            }
            let id = Uuid::now_v7().to_string();
            let mut headers = EventHeaders::of(event).to_header_map();
            headers.insert(HEADER_MSG_ID, id.as_str());
            let payload = Bytes::copy_from_slice(event.payload.get().as_bytes());
            let at = Instant::now();
            let ack = js.publish_with_headers(scheme.subject_of(event)?, headers, payload).await?;
            sent.insert(id, at);
            acks.spawn(async move { ack.await });
        }
        while let Some(ack) = acks.join_next().await {
            ack.context("a PubAck task panicked")?.context("raw lag: PubAck")?;
        }
        let elapsed = started.elapsed();
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, "tmb-no-backends").await, nats, elapsed);
        let (mut lag, mut seen) = (histogram()?, 0u64);
        let deadline = Instant::now() + GRACE;
        while seen < sent.len() as u64 {
            let Ok(Some((id, at))) = tokio::time::timeout_at(deadline, arrivals.recv()).await else {
                listening.abort();
                bail!("raw lag: {} of {} published messages did not arrive", sent.len() as u64 - seen, sent.len());
            };
            if let Some(published) = sent.get(&id) {
                seen += 1;
                let micros = u64::try_from(at.saturating_duration_since(*published).as_micros()).unwrap_or(u64::MAX);
                lag.saturating_record(micros.max(1));
            }
        }
        listening.abort();
        Ok(Figure::new("raw-lag", Counted::Items("events/s"), sample(seen, elapsed, lag, cpu))
            .with("target_rate", f64::from(rate), "events/s")
            .with("nats_server_cpu_per_event", nats_us / seen.max(1) as f64, "us"))
    }
}

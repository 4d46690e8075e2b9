//! F3: the NATS relay. Drain of a pre-stored log against a raw JetStream publish of the
//! same events, steady-state lag at a fixed append rate, and (M) the bench process's
//! resident set while the relay drains.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use hdrhistogram::Histogram;
use tidemark::{AppendRequest, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
use tidemark_nats::{NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::PgEventStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cpu::{nats_server_ticks, ticks, CpuMark, CpuUsage};
use crate::domain::{opened, AccountEvent};
use crate::figure::{Counted, Figure};
use crate::framework::{new_account, seed};
use crate::jetstream::{self, Names};
use crate::memory::{self, mib};
use crate::raw_publish;
use crate::runner::{histogram, Sample};
use crate::scenarios::{Suite, BATCH};

/// Longest drain before the run gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(900);
/// Longest wait, after the last append, for the relay to deliver every appended event.
const LAG_GRACE: Duration = Duration::from_secs(10);

impl Suite<'_> {
    /// F3 and M (relay part), on the fresh JetStream streams `names` (the caller deletes
    /// them, also after an error or Ctrl-C: see [`jetstream::delete_streams`]).
    pub(crate) async fn f3(&mut self, nats_url: &str, names: &Names) -> Result<()> {
        let client =
            async_nats::connect(nats_url).await.with_context(|| format!("connecting to NATS at {nats_url}"))?;
        self.f3_streams(nats_url, &client, names).await
    }

    async fn f3_streams(&mut self, nats_url: &str, client: &async_nats::Client, names: &Names) -> Result<()> {
        let s = self.settings;
        let streams = s.relay_events.div_ceil(BATCH);
        eprintln!("F3: storing {} events ({streams} accounts x {BATCH}, 100-event appends)", streams * BATCH);
        self.db.reset().await?;
        let seeding = Instant::now();
        let seeder = self.db.store(&self.db.next_tag(), 16, false).await?;
        seed(&seeder, streams, BATCH).await?;
        seeder.pool().close().await;
        let seeded = seeding.elapsed();
        eprintln!("  stored in {seeded:.1?} ({:.0} events/s)", (streams * BATCH) as f64 / seeded.as_secs_f64());
        self.db.settle(s.quiet_wait).await;

        // The relay, on its own store (as in its own process: NOTIFY wakes it).
        let tag = self.db.next_tag();
        let store = self.db.store(&tag, 2, false).await?;
        let config = RelayConfig::new("bench").subjects(SubjectScheme::new(&names.relay_prefix, 16)?);
        let relay = NatsRelay::new(store.clone(), client.clone(), config.clone())?;
        relay.ensure_stream(&StreamSettings::new(&names.relay_stream)).await?;
        let head = store.log_head().await?;
        let shutdown = CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();

        eprintln!("measuring F3 drain of {} events", streams * BATCH);
        let peak_reset = memory::reset_peak();
        let before = memory::now();
        let (cpu, nats) = (CpuMark::take(self.db, &tag).await, nats_server_ticks());
        let started = Instant::now();
        let task = tokio::spawn({
            let (relay, shutdown) = (relay.clone(), shutdown.clone());
            async move { relay.run(shutdown).await }
        });
        let mut peak = before.rss_kib;
        for poll in 0u64.. {
            if relay.status().last_acked >= head {
                break;
            }
            if task.is_finished() || started.elapsed() > DRAIN_LIMIT {
                bail!("the relay stopped or stalled while draining: {:?}", relay.status());
            }
            if poll % 5 == 0 {
                peak = peak.max(memory::now().rss_kib);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed();
        let after = memory::now();
        peak = peak.max(after.rss_kib);
        let status = relay.status();
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, &tag).await, nats, elapsed);
        let drained = status.acked;
        let drain = Figure::new("F3-drain", Counted::Items("events/s"), sample(drained, elapsed, histogram()?, cpu))
            .with("nats_server_cpu_per_event", nats_us / drained.max(1) as f64, "us")
            .with("duplicates", status.duplicates as f64, "acks")
            .with("M_rss_before_drain", mib(before.rss_kib), "MiB")
            .with("M_peak_rss_during_drain", mib(peak), "MiB")
            .with("M_rss_growth_during_drain", mib(peak.saturating_sub(before.rss_kib)), "MiB");
        let drain = m_peak(drain, peak_reset, after);

        let lag = self.lag(nats_url, &relay, &config, &tag).await?;
        shutdown.cancel();
        task.await.context("the relay panicked")??;
        let status = relay.status();
        let lag = lag.with("relay_failures", status.failures as f64, "retries");
        let _ = relay.jetstream().delete_stream(&names.relay_stream).await;
        // Dropping the last handle on the relay's store ends its LISTEN task and pool;
        // closing the pool first would leave that task retrying (and warning) on it.
        drop((relay, store));

        let (raw, events) = self.raw_publish(client, names, s.raw_events.min(streams * BATCH)).await?;
        let raw_lag = self.raw_lag(client, names, &events).await?;
        self.report.figures.extend([drain.against(&raw), raw, lag.against_latency(&raw_lag), raw_lag]);
        Ok(())
    }

    /// Appends single events at a fixed rate, open loop, while the relay runs, and
    /// measures for each the time from `append` returning to its arrival on a core NATS
    /// subscription of the relay's subjects (the server forwards a message to
    /// subscribers as it stores it, just before its PubAck).
    async fn lag(&self, nats_url: &str, relay: &NatsRelay, config: &RelayConfig, tag: &str) -> Result<Figure> {
        let (rate, window) = (self.settings.lag_rate, self.settings.lag_window);
        eprintln!("measuring F3 lag: {rate} events/s for {window:?}");
        let listener = async_nats::connect(nats_url).await?;
        let subscription = listener.subscribe(config.subjects.all_filter()).await?;
        listener.flush().await?;
        let (listening, mut arrivals) = jetstream::arrivals(subscription);
        let appender = self.db.store(tag, 16, true).await?;
        let mut appends = tokio::task::JoinSet::new();
        let (cpu, nats) = (CpuMark::take(self.db, tag).await, nats_server_ticks());
        let started = Instant::now();
        let step = Duration::from_secs_f64(1.0 / rate as f64);
        let mut arriving = crate::arrivals::every(started, step, started + window)?;
        let mut n = 0u64;
        while arriving.recv().await.is_some() {
            appends.spawn(append_one(appender.clone(), n));
            n += 1;
        }
        let mut appended = HashMap::new();
        let mut append_latency = histogram()?;
        while let Some(done) = appends.join_next().await {
            let (id, at, took) = done.context("an append panicked")??;
            append_latency.saturating_record(micros(took));
            appended.insert(id, at);
        }
        let elapsed = started.elapsed();
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, tag).await, nats, elapsed);
        let (mut lag, mut seen, mut early) = (histogram()?, 0u64, 0u64);
        let deadline = Instant::now() + LAG_GRACE;
        while seen < appended.len() as u64 {
            let Ok(Some((id, at))) = tokio::time::timeout_at(deadline, arrivals.recv()).await else {
                listening.abort();
                bail!(
                    "{} of {} appended events did not arrive: {:?}",
                    appended.len() as u64 - seen,
                    appended.len(),
                    relay.status()
                );
            };
            if let Some(done) = id.parse::<Uuid>().ok().and_then(|id| appended.get(&id)) {
                seen += 1;
                early += u64::from(at < *done);
                lag.saturating_record(micros(at.saturating_duration_since(*done)));
            }
        }
        listening.abort();
        appender.pool().close().await;
        Ok(Figure::new("F3-lag", Counted::Items("events/s"), sample(seen, elapsed, lag, cpu))
            .with("target_rate", rate as f64, "events/s")
            .with("append_p50", append_latency.value_at_quantile(0.5) as f64 / 1000.0, "ms")
            .with("append_p99", append_latency.value_at_quantile(0.99) as f64 / 1000.0, "ms")
            .with("arrived_before_append_returned", early as f64, "events")
            .with("nats_server_cpu_per_event", nats_us / seen.max(1) as f64, "us"))
    }

    /// The raw baseline: the first `count` stored events (read beforehand) published by
    /// plain async-nats into a fresh stream with the relay stream's settings.
    async fn raw_publish(
        &self,
        client: &async_nats::Client,
        names: &Names,
        count: usize,
    ) -> Result<(Figure, Vec<RecordedEvent>)> {
        eprintln!("measuring raw JetStream publish of {count} events (1024 PubAcks in flight)");
        let loader = self.db.store(&self.db.next_tag(), 2, false).await?;
        let events = raw_publish::load_events(&loader, count).await?;
        loader.pool().close().await;
        let config = RelayConfig::default();
        let js = jetstream::context(client.clone(), &config);
        let scheme = SubjectScheme::new(&names.raw_prefix, 16)?;
        let settings = StreamSettings::new(&names.raw_stream);
        tidemark_nats::ensure_stream(&js, &scheme, &settings, config.retry_horizon).await?;
        self.db.settle(self.settings.quiet_wait).await;
        let (cpu, nats) = (CpuMark::take(self.db, "tmb-no-backends").await, nats_server_ticks());
        let started = Instant::now();
        let duplicates = raw_publish::publish_raw(&js, &scheme, &events, config.max_in_flight).await?;
        let elapsed = started.elapsed();
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, "tmb-no-backends").await, nats, elapsed);
        let published = events.len() as u64;
        let figure = Figure::new("raw-js", Counted::Items("events/s"), sample(published, elapsed, histogram()?, cpu))
            .with("nats_server_cpu_per_event", nats_us / published.max(1) as f64, "us")
            .with("duplicates", duplicates as f64, "acks");
        Ok((figure, events))
    }
}

/// Appends one `AccountOpened` to a new account; (event id, when `append` returned, how long it took).
async fn append_one(store: PgEventStore, n: u64) -> Result<(Uuid, Instant, Duration)> {
    let id = Uuid::now_v7();
    let event = NewEvent::from_domain(&AccountEvent::from(opened(n)), Metadata::new())?.with_id(EventId(id));
    let request = AppendRequest::new(new_account()?, ExpectedVersion::NoStream, vec![event]);
    let began = Instant::now();
    store.append(request).await?;
    let done = Instant::now();
    Ok((id, done, done - began))
}

/// CPU use between two marks, with nats-server's share taken out of `other`; also
/// nats-server's CPU in microseconds.
pub(crate) fn usage(first: CpuMark, last: &CpuMark, nats_before: u64, elapsed: Duration) -> (CpuUsage, f64) {
    let mut cpu = first.until(last);
    let nats = ticks(nats_server_ticks().saturating_sub(nats_before)).as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    cpu.other = (cpu.other - nats / (elapsed.as_secs_f64() * cores)).max(0.0);
    (cpu, nats * 1e6)
}

/// Adds `M_peak_rss`: the process's VmHWM since [`memory::reset_peak`] at the start (when the
/// kernel took the reset; otherwise the peak of the sampled resident sets).
pub(crate) fn m_peak(figure: Figure, reset: bool, after: memory::Memory) -> Figure {
    match reset {
        true => figure.with("M_peak_rss", mib(after.hwm_kib), "MiB"),
        false => {
            let sampled = figure.extra("M_peak_rss_during_drain").or(figure.extra("M_peak_rss_during_apply"));
            figure.with("M_peak_rss", sampled.unwrap_or(f64::NAN), "MiB").with("M_peak_rss_sampled", 1.0, "")
        }
    }
}

pub(crate) fn sample(events: u64, window: Duration, latency: Histogram<u64>, cpu: CpuUsage) -> Sample {
    Sample { writers: 1, ops: events, items: events, window, latency, total_ops: events, cpu }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

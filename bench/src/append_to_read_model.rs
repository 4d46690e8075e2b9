//! F6: end-to-end latency, append → visible in a PostgreSQL read model, open loop at 1 %, 10 %
//! and 50 % of the F1 capacity (by default), through tidemark's whole pipeline and a raw
//! hand-written one (`raw_append_to_read_model.rs`), with the same detector (`visible.rs`).
//!
//! tidemark: `PgEventStore::append` (defaults: group commit) → `NatsRelay` woken by the
//! store's NOTIFY → JetStream → `JetStreamFeed` → `ProjectionRunner` with `PgReadModels`
//! (defaults) applying [`TotalsProjection`]. Each event opens a new account, so it inserts
//! one read-model row, which the detector's trigger reports.
//!
//! `F6-pgfeed`: the same store, runner and projection on `PgLogFeed` (no relay, no NATS):
//! each partition reads the store's log itself, woken by its NOTIFY. It has no per-hop
//! breakdown (there is no JetStream message to time-stamp the middle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;
use tidemark::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use tidemark_nats::{ConsumerSettings, JetStreamFeed};
use tidemark_nats::{MessageKey, NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::PgEventStore;
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cpu::{nats_server_ticks, CpuMark, CpuUsage};
use crate::domain::{opened, AccountEvent};
use crate::figure::{Counted, Figure};
use crate::hop_breakdown::{self, Hops};
use crate::jetstream::{self, Names};
use crate::raw_append_to_read_model::{self, RawAppender};
use crate::raw_pull_consumers::{self, Progress, Tuning};
use crate::read_model::{create_sql, upsert_sql, TotalsProjection, TABLE};
use crate::relay::{sample, usage};
use crate::runner::histogram;
use crate::scenarios::Suite;
use crate::visible::{self, Detector, Schedule, Seen};

/// Partitions of F6's subject schemes (one consumer and worker each, on both sides).
pub(crate) const PARTITIONS: u32 = 4;

/// One pipeline's running tasks.
struct Running {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Result<()>>>,
}

impl Running {
    async fn stop(self) -> Result<()> {
        self.stop.cancel();
        for task in self.tasks {
            task.await.context("a pipeline task panicked")??;
        }
        Ok(())
    }
}

impl Suite<'_> {
    /// F6 on fresh JetStream streams of `names` (deleted by the caller).
    pub(crate) async fn f6(&mut self, nats_url: &str, names: &Names) -> Result<()> {
        let (capacity, source) = self.f1_new_capacity().await?;
        self.db.reset().await?;
        sqlx::query(&visible::function_sql(self.db.schema())).execute(self.db.admin()).await?;
        let client =
            async_nats::connect(nats_url).await.with_context(|| format!("connecting to NATS at {nats_url}"))?;
        let framework = self.f6_framework(&client, names, capacity).await?;
        let pg_feed = self.f6_pg_feed(capacity).await?;
        let raw = self.f6_raw(&client, names, capacity).await?;
        for ((f, r), pg) in framework.iter().zip(&raw).zip(pg_feed) {
            let pg = pg.against_latency(f).against_latency(r).with("f1_capacity", capacity, "cmd/s");
            self.report.figures.push(pg);
        }
        for (f, r) in framework.into_iter().zip(raw) {
            let ratio = |q: f64| {
                f.sample.latency.value_at_quantile(q) as f64 / r.sample.latency.value_at_quantile(q).max(1) as f64
            };
            let p999 = ratio(0.999);
            let f = f
                .against_latency(&r)
                .with("p99.9_vs_raw", p999, "x")
                .with("f1_capacity", capacity, "cmd/s")
                .with(source, 1.0, "");
            self.report.figures.extend([f, r]);
        }
        Ok(())
    }

    /// The open-loop rates (`--f6-rates` in events/s, or `--f6-shares`: default 10 % and
    /// 50 % of the F1 capacity), with the names of their framework and raw figures.
    fn schedules(&self, capacity: f64) -> impl Iterator<Item = (&'static str, &'static str, Schedule)> + '_ {
        let trimmed = |value: String| value.trim_end_matches('0').trim_end_matches('.').to_owned();
        let rates: Vec<(f64, String)> = if self.settings.f6_rates.is_empty() {
            let share = |s: &f64| ((capacity * s).max(1.0), format!("{}%", trimmed(format!("{:.2}", s * 100.0))));
            self.settings.f6_shares.iter().map(share).collect()
        } else {
            self.settings.f6_rates.iter().map(|r| (*r, format!("{}/s", trimmed(format!("{r:.1}"))))).collect()
        };
        rates.into_iter().map(move |(rate, label)| {
            // Figure names are static; a run has a handful of rates.
            let fw: &'static str = Box::leak(format!("F6@{label}").into_boxed_str());
            let raw: &'static str = Box::leak(format!("raw-e2e@{label}").into_boxed_str());
            (fw, raw, Schedule { rate, warmup: self.settings.f6_warmup, window: self.settings.f6_window })
        })
    }

    async fn f6_framework(&self, client: &async_nats::Client, names: &Names, capacity: f64) -> Result<Vec<Figure>> {
        let tag = self.db.next_tag();
        let scheme = SubjectScheme::new(&names.f6_prefix, PARTITIONS)?;
        let stop = CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        let mut tasks = Vec::new();

        let relay_store = self.db.store(&tag, 2, false).await?;
        let relay = NatsRelay::new(relay_store, client.clone(), RelayConfig::new("f6").subjects(scheme.clone()))?;
        relay.ensure_stream(&StreamSettings::new(&names.f6_stream)).await?;
        let (r, s) = (relay.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { Ok(r.run(s).await?) }));

        let store = self.db.store(&tag, PARTITIONS as usize, false).await?;
        let mut feed = JetStreamFeed::new(async_nats::jetstream::new(client.clone()), &names.f6_stream, scheme);
        if self.settings.keyed_feed {
            feed = feed.with_message_key(MessageKey::load(&store).await?);
        }
        let read_models = PgReadModels::new(&store);
        let table = format!("\"{}\".{TABLE}", read_models.projection_schema("f6"));
        let config = RunnerConfig::default().consumer("f6fw");
        let projection = TotalsProjection::new("f6")?.undoable(self.settings.undoable);
        let runner = ProjectionRunner::new(projection, read_models, store.clone(), feed, config)?;
        runner.set_up().await?;
        let channel = format!("f6_fw_{}", &self.db.schema()[6..]);
        sqlx::query(&visible::trigger_sql(self.db.schema(), &table, &channel)).execute(self.db.admin()).await?;
        let (r, s) = (runner.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { Ok(r.run(s).await?) }));
        let running = Running { stop: stop.clone(), tasks };

        let appender = self.db.store(&tag, 16, true).await?;
        let mut detector = Detector::listen(&self.db.raw_pool(&tag, 1).await?, &channel).await?;
        let counter = Arc::new(AtomicU64::new(0));
        let send = |stream: String| append(appender.clone(), stream, counter.fetch_add(1, Ordering::Relaxed));
        let jetstream = async_nats::jetstream::new(client.clone());
        let stored_in = (&jetstream, names.f6_stream.as_str());
        let measured = self.measure_rates(capacity, Side::Framework, &tag, stored_in, &mut detector, send).await;
        let figures = match measured {
            Ok(figures) => figures,
            // A pipeline task that failed explains a missing event better.
            Err(error) => return Err(running.stop().await.err().unwrap_or(error)),
        };
        running.stop().await?;
        appender.pool().close().await;
        drop((relay, runner, store));
        Ok(figures)
    }

    /// The framework's pipeline without NATS: the runner on `PgLogFeed`.
    async fn f6_pg_feed(&self, capacity: f64) -> Result<Vec<Figure>> {
        let tag = self.db.next_tag();
        let stop = CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        // A connection per partition for its log reads, one per partition for its batches.
        let store = self.db.store(&tag, 2 * PARTITIONS as usize, false).await?;
        let feed = PgLogFeed::new(store.clone(), PARTITIONS)?;
        let read_models = PgReadModels::new(&store);
        let table = format!("\"{}\".{TABLE}", read_models.projection_schema("f6pg"));
        let config = RunnerConfig::default().consumer("f6pg");
        let projection = TotalsProjection::new("f6pg")?.undoable(self.settings.undoable);
        let runner = ProjectionRunner::new(projection, read_models, store.clone(), feed, config)?;
        runner.set_up().await?;
        let channel = format!("f6_pg_{}", &self.db.schema()[6..]);
        sqlx::query(&visible::trigger_sql(self.db.schema(), &table, &channel)).execute(self.db.admin()).await?;
        let (r, s) = (runner.clone(), stop.clone());
        let running = Running { stop: stop.clone(), tasks: vec![tokio::spawn(async move { Ok(r.run(s).await?) })] };

        let appender = self.db.store(&tag, 16, true).await?;
        let mut detector = Detector::listen(&self.db.raw_pool(&tag, 1).await?, &channel).await?;
        let counter = Arc::new(AtomicU64::new(0));
        let send = |stream: String| append(appender.clone(), stream, counter.fetch_add(1, Ordering::Relaxed));
        let measured = self.measure_pg_rates(capacity, &tag, &mut detector, send).await;
        let figures = match measured {
            Ok(figures) => figures,
            Err(error) => return Err(running.stop().await.err().unwrap_or(error)),
        };
        running.stop().await?;
        appender.pool().close().await;
        drop((runner, store));
        Ok(figures)
    }

    async fn f6_raw(&self, client: &async_nats::Client, names: &Names, capacity: f64) -> Result<Vec<Figure>> {
        let (tag, schema) = (self.db.next_tag(), self.db.schema());
        let scheme = SubjectScheme::new(&names.f6_raw_prefix, PARTITIONS)?;
        let relay_config = RelayConfig::default();
        let jetstream = jetstream::context(client.clone(), &relay_config);
        let settings = StreamSettings::new(&names.f6_raw_stream);
        tidemark_nats::ensure_stream(&jetstream, &scheme, &settings, relay_config.retry_horizon).await?;
        let table = format!("{schema}.f6_raw_totals");
        let channel = format!("f6_raw_{}", &schema[6..]);
        sqlx::query(&create_sql(&table)).execute(self.db.admin()).await?;
        sqlx::query(&visible::trigger_sql(schema, &table, &channel)).execute(self.db.admin()).await?;

        let stop = CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        let wake = Arc::new(tokio::sync::Notify::new());
        let log = format!("{schema}.{}", crate::db::RAW_TABLES[0]);
        let wake_channel = format!("f6_log_{}", &schema[6..]);
        let mut tasks: Vec<JoinHandle<Result<()>>> = Vec::new();
        let notify_pool = self.db.raw_pool(&tag, 1).await?;
        tasks.push(tokio::spawn(raw_append_to_read_model::notifier(
            notify_pool,
            wake_channel.clone(),
            wake.clone(),
            stop.clone(),
        )));
        let reader_pool = self.db.raw_pool(&tag, 2).await?;
        let js = jetstream.clone();
        let reader =
            raw_append_to_read_model::reader(reader_pool, log.clone(), wake_channel, js, scheme.clone(), stop.clone());
        tasks.push(tokio::spawn(reader));
        let consumer = ConsumerSettings::default();
        let tuning = Tuning {
            batch: RunnerConfig::default().batch_size,
            pull_batch: consumer.pull_batch,
            linger: consumer.linger,
        };
        let upsert_pool = self.db.raw_pool(&tag, PARTITIONS as usize).await?;
        let sql: Arc<str> = upsert_sql(&table).into();
        for p in 0..PARTITIONS {
            let filter = scheme.partition_filter(p)?;
            // Without acks, as the runner consumes.
            let durable = format!("f6raw_p{p}");
            let messages =
                raw_pull_consumers::subscribe(&jetstream, &names.f6_raw_stream, &durable, filter, tuning, false)
                    .await?;
            let work = raw_pull_consumers::upsert_loop(
                messages,
                upsert_pool.clone(),
                sql.clone(),
                tuning,
                false,
                Arc::new(Progress::default()),
                stop.clone(),
            );
            tasks.push(tokio::spawn(work));
        }
        let running = Running { stop: stop.clone(), tasks };

        let appender = RawAppender::new(self.db.raw_pool(&tag, 16).await?, &log, wake);
        let mut detector = Detector::listen(&self.db.raw_pool(&tag, 1).await?, &channel).await?;
        let counter = AtomicU64::new(0);
        let send = |stream: String| appender.append(stream, counter.fetch_add(1, Ordering::Relaxed));
        let stored_in = (&jetstream, names.f6_raw_stream.as_str());
        let figures = match self.measure_rates(capacity, Side::Raw, &tag, stored_in, &mut detector, send).await {
            Ok(figures) => figures,
            // A pipeline task that failed explains a missing event better.
            Err(error) => return Err(running.stop().await.err().unwrap_or(error)),
        };
        running.stop().await?;
        upsert_pool.close().await;
        Ok(figures)
    }
}

/// Which pipeline a measurement drives.
#[derive(Clone, Copy)]
enum Side {
    Framework,
    Raw,
}

impl Suite<'_> {
    /// Runs the open loop at every rate through one pipeline (`send` starts one event's
    /// append), with CPU accounting over the measurement's backends (`tag`).
    async fn measure_rates<S, Fut>(
        &self,
        capacity: f64,
        side: Side,
        tag: &str,
        stored_in: (&async_nats::jetstream::Context, &str),
        detector: &mut Detector,
        send: S,
    ) -> Result<Vec<Figure>>
    where
        S: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let mut figures = Vec::new();
        for (framework, raw, schedule) in self.schedules(capacity) {
            let (series, what) = match side {
                Side::Framework => (framework, "tidemark"),
                Side::Raw => (raw, "raw"),
            };
            self.calm().await;
            eprintln!("measuring {series}: {what} end to end at {:.0} events/s", schedule.rate);
            let (jetstream, stream) = stored_in;
            let after = hop_breakdown::last_sequence(jetstream, stream).await?;
            let (cpu, nats) = (CpuMark::take(self.db, tag).await, nats_server_ticks());
            let seen = visible::open_loop(detector, schedule, &send).await?;
            let (cpu, nats_us) =
                usage(cpu, &CpuMark::take(self.db, tag).await, nats, schedule.warmup + schedule.window);
            let hops = hop_breakdown::breakdown(jetstream, stream, after, &seen.traces).await?;
            figures.push(figure(series, schedule, seen, &hops, cpu, nats_us));
        }
        Ok(figures)
    }
}

impl Suite<'_> {
    /// [`measure_rates`](Self::measure_rates) for the PostgreSQL feed: no JetStream stream,
    /// so no per-hop breakdown.
    async fn measure_pg_rates<S, Fut>(
        &self,
        capacity: f64,
        tag: &str,
        detector: &mut Detector,
        send: S,
    ) -> Result<Vec<Figure>>
    where
        S: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let mut figures = Vec::new();
        for (framework, _, schedule) in self.schedules(capacity) {
            let series: &'static str = Box::leak(framework.replacen("F6", "F6-pgfeed", 1).into_boxed_str());
            self.calm().await;
            eprintln!("measuring {series}: tidemark on the PostgreSQL feed at {:.0} events/s", schedule.rate);
            let (cpu, nats) = (CpuMark::take(self.db, tag).await, nats_server_ticks());
            let seen = visible::open_loop(detector, schedule, &send).await?;
            let (cpu, nats_us) =
                usage(cpu, &CpuMark::take(self.db, tag).await, nats, schedule.warmup + schedule.window);
            let hops = Hops { to_nats: histogram()?, to_visible: histogram()?, unmatched: 0 };
            let mut figure = figure(series, schedule, seen, &hops, cpu, nats_us);
            // No JetStream message splits the path: no hops to report.
            figure.extra.retain(|(metric, _, _)| !metric.starts_with("to_") && *metric != "hops_unmatched");
            figures.push(figure);
        }
        Ok(figures)
    }
}

/// Appends an `AccountOpened` to the new stream `stream` (group commit, as by default).
async fn append(store: PgEventStore, stream: String, n: u64) -> Result<()> {
    let event = NewEvent::from_domain(&AccountEvent::from(opened(n)), Metadata::new())?;
    let request = AppendRequest::new(StreamId::new(stream)?, ExpectedVersion::NoStream, vec![event]);
    store.append(request).await?;
    Ok(())
}

fn figure(
    series: &'static str,
    schedule: Schedule,
    seen: Seen,
    hops: &Hops,
    mut cpu: CpuUsage,
    nats_us: f64,
) -> Figure {
    // CPU was counted over warm-up and window; latencies over the window only.
    let share = schedule.window.as_secs_f64() / (schedule.warmup + schedule.window).as_secs_f64();
    (cpu.client, cpu.server) = (cpu.client.mul_f64(share), cpu.server.mul_f64(share));
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (p999, max) = (ms(&seen.latency, 0.999), seen.latency.max() as f64 / 1000.0);
    let events = seen.events.max(1) as f64;
    let (lateness, send) = (seen.lateness, seen.send);
    let mut sample = sample(seen.events, schedule.window, seen.latency, cpu);
    sample.writers = PARTITIONS as usize;
    Figure::new(series, Counted::Items("events/s"), sample)
        .with("target_rate", schedule.rate, "events/s")
        .with("p99.9", p999, "ms")
        .with("max", max, "ms")
        .with("send_start_late_p50", ms(&lateness, 0.5), "ms")
        .with("send_start_late_p99", ms(&lateness, 0.99), "ms")
        .with("append_p50", ms(&send, 0.5), "ms")
        .with("append_p99", ms(&send, 0.99), "ms")
        .with("to_nats_p50", ms(&hops.to_nats, 0.5), "ms")
        .with("to_nats_p99", ms(&hops.to_nats, 0.99), "ms")
        .with("to_visible_p50", ms(&hops.to_visible, 0.5), "ms")
        .with("to_visible_p99", ms(&hops.to_visible, 0.99), "ms")
        .with("hops_unmatched", hops.unmatched as f64, "events")
        .with("nats_server_cpu_per_event", nats_us * share / events, "us")
}

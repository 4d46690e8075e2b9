//! F4: live projection apply from JetStream into a PostgreSQL read model, at 1, 2 and 4
//! partitions, next to two hand-written baselines on the same stream (see `raw_pull_consumers.rs`), and
//! (M) the bench process's resident set while the runner applies. `F4-pgfeed`: the same
//! runner and projection on the PostgreSQL feed (`PgLogFeed`, each partition reading the
//! whole log), over the same stored events.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tidemark::EventStore;
use tidemark_nats::{ConsumerSettings, JetStreamFeed};
use tidemark_nats::{MessageKey, NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::PgEventStore;
use tidemark_projections::{Feed, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cpu::{nats_server_ticks, CpuMark, CpuUsage};
use crate::figure::{Counted, Figure};
use crate::framework::seed;
use crate::jetstream::Names;
use crate::memory::{self, mib, Memory};
use crate::raw_pull_consumers::{self, Progress};
use crate::read_model::{create_sql, upsert_sql, verify, TotalsProjection, TABLE};
use crate::relay::{m_peak, sample, usage};
use crate::runner::histogram;
use crate::runner_process::{run_in_child, taken_in, RunnerJob};
use crate::scenarios::Suite;

/// Events per account: one opening and nine deposits, stored in one append.
pub(crate) const STREAM_LENGTH: usize = 10;
/// The deposits' amount (`framework::seed`).
pub(crate) const DEPOSIT: i64 = 10_000;
/// Longest drain or apply before the run gives up.
const LIMIT: Duration = Duration::from_secs(900);
/// Longest time without progress before a measurement gives up.
const STALL: Duration = Duration::from_secs(60);

/// One partition count's stream, as the relay published it.
struct Published<'a> {
    nats_url: &'a str,
    scheme: SubjectScheme,
    stream: String,
    events: u64,
    accounts: usize,
}

impl Published<'_> {
    fn partitions(&self) -> u32 {
        self.scheme.partitions()
    }
}

/// What the bench process's memory did while a consumer ran.
struct Watched {
    elapsed: Duration,
    before: Memory,
    peak_kib: u64,
    after: Memory,
    /// Whether VmHWM was reset as the watch started (then `after.hwm_kib` is the peak).
    peak_reset: bool,
}

impl Suite<'_> {
    /// F4 and M (runner part), on fresh JetStream streams named after `names` (the caller
    /// deletes what is left of them, also after an error or Ctrl-C).
    pub(crate) async fn f4(&mut self, nats_url: &str, names: &Names) -> Result<()> {
        let s = self.settings;
        let client =
            async_nats::connect(nats_url).await.with_context(|| format!("connecting to NATS at {nats_url}"))?;
        let (accounts, events) = self.store_accounts("F4", s.f4_events).await?;
        for (i, &partitions) in s.f4_partitions.iter().enumerate() {
            let scheme = SubjectScheme::new(names.f4_prefix(partitions), partitions)?;
            let stream = names.f4_stream(partitions);
            self.relay_into(&client, &scheme, &stream).await?;
            let run = Published { nats_url, scheme, stream, events, accounts };
            let raw_pull = self.no_work(&run, true).await?;
            let raw_pull_noack = self.no_work(&run, false).await?;
            let raw_upsert = self.raw_upsert(&run, true).await?.against(&raw_pull);
            let raw_upsert_noack = self.raw_upsert(&run, false).await?.against(&raw_pull_noack);
            let framework =
                self.framework(&run).await?.against(&raw_upsert_noack).against(&raw_upsert).against(&raw_pull_noack);
            let pg_feed = self.framework_pg(&run).await?.against(&framework).against(&raw_upsert_noack);
            if i == 0 {
                let process = self.framework_process(&run).await?.against(&framework);
                self.report.figures.push(process);
            }
            self.report.figures.extend([framework, pg_feed, raw_upsert_noack, raw_upsert, raw_pull_noack, raw_pull]);
            let _ = async_nats::jetstream::new(client.clone()).delete_stream(&run.stream).await;
        }
        Ok(())
    }

    /// Empties the run's schema and stores about `wanted` events: accounts of
    /// [`STREAM_LENGTH`] events, one append each (untimed). Returns accounts and events.
    pub(crate) async fn store_accounts(&self, scenario: &str, wanted: usize) -> Result<(usize, u64)> {
        let accounts = wanted.div_ceil(STREAM_LENGTH);
        let events = (accounts * STREAM_LENGTH) as u64;
        eprintln!("{scenario}: storing {events} events ({accounts} accounts x {STREAM_LENGTH}, one append each)");
        self.db.reset().await?;
        let seeding = Instant::now();
        let seeder = self.db.store(&self.db.next_tag(), 16, false).await?;
        seed(&seeder, accounts, STREAM_LENGTH).await?;
        seeder.pool().close().await;
        eprintln!("  stored in {:.1?}", seeding.elapsed());
        Ok((accounts, events))
    }

    /// Publishes the whole log into `stream` with a `NatsRelay` (untimed).
    async fn relay_into(&self, client: &async_nats::Client, scheme: &SubjectScheme, stream: &str) -> Result<()> {
        let started = Instant::now();
        let store = self.db.store(&self.db.next_tag(), 2, false).await?;
        let config = RelayConfig::new(format!("f4-p{}", scheme.partitions())).subjects(scheme.clone());
        let relay = NatsRelay::new(store.clone(), client.clone(), config)?;
        relay.ensure_stream(&StreamSettings::new(stream)).await?;
        let head = store.log_head().await?;
        let shutdown = CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();
        let task = tokio::spawn({
            let (relay, shutdown) = (relay.clone(), shutdown.clone());
            async move { relay.run(shutdown).await }
        });
        while relay.status().last_acked < head {
            if task.is_finished() || started.elapsed() > LIMIT {
                bail!("the relay stopped or stalled while publishing: {:?}", relay.status());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        task.await.context("the relay panicked")??;
        eprintln!("  F4: relayed into {stream} ({} partitions) in {:.1?}", scheme.partitions(), started.elapsed());
        drop((relay, store));
        Ok(())
    }

    /// The framework: a `ProjectionRunner` of [`TotalsProjection`] on every partition.
    async fn framework(&self, run: &Published<'_>) -> Result<Figure> {
        let (p, t) = (run.partitions(), self.settings.f4_tuning);
        let tag = self.db.next_tag();
        let store = self.db.store(&tag, p as usize, false).await?;
        let client = async_nats::connect(run.nats_url).await?;
        let consumer = ConsumerSettings::default().pull_batch(t.pull_batch).linger(t.linger);
        let mut feed = JetStreamFeed::new(async_nats::jetstream::new(client), &run.stream, run.scheme.clone())
            .with_settings(consumer);
        if self.settings.keyed_feed {
            feed = feed.with_message_key(MessageKey::load(&store).await?);
        }
        self.framework_on(run, (&tag, store), feed, ("F4", projection_name(p))).await
    }

    /// The same runner on the PostgreSQL feed: every partition's subscription reads the
    /// whole log (pages of `pull_batch` events) and keeps its own events.
    async fn framework_pg(&self, run: &Published<'_>) -> Result<Figure> {
        let (p, t) = (run.partitions(), self.settings.f4_tuning);
        let tag = self.db.next_tag();
        // A connection per partition for its log reads, one per partition for its batches.
        let store = self.db.store(&tag, 2 * p as usize, false).await?;
        let feed = PgLogFeed::new(store.clone(), p)?.page_size(t.pull_batch);
        self.framework_on(run, (&tag, store), feed, ("F4-pgfeed", format!("{}_pg", projection_name(p)))).await
    }

    /// M's runner part: the same runner, on a fresh projection and consumer, in a process
    /// of its own (see `runner_process`), whose peak resident set is the runner's alone.
    async fn framework_process(&self, run: &Published<'_>) -> Result<Figure> {
        let (p, t) = (run.partitions(), self.settings.f4_tuning);
        let name = format!("{}_proc", projection_name(p));
        let job = RunnerJob {
            database_url: self.db.url().to_owned(),
            schema: self.db.schema().to_owned(),
            tag: self.db.next_tag(),
            nats_url: run.nats_url.to_owned(),
            stream: run.stream.clone(),
            subject_prefix: run.scheme.prefix().to_owned(),
            partitions: p,
            events: run.events,
            projection: name.clone(),
            batch: t.batch,
            pull_batch: t.pull_batch,
            linger_ms: u64::try_from(t.linger.as_millis()).unwrap_or(u64::MAX),
            keyed_feed: self.settings.keyed_feed,
            undoable: self.settings.undoable,
        };
        self.calm().await;
        eprintln!("measuring F4-process: the runner in a process of its own, {p} partitions ({} events)", run.events);
        let report = run_in_child(&job, LIMIT).await?;
        let store = self.db.store(&self.db.next_tag(), 1, false).await?;
        let table = format!("\"{}\".{TABLE}", PgReadModels::new(&store).projection_schema(&name));
        store.pool().close().await;
        verify(self.db.admin(), &table, run.accounts, STREAM_LENGTH, DEPOSIT).await?;
        // The child's CPU is not this process's: the figure carries none.
        let elapsed = Duration::from_micros(report.elapsed_us);
        let mut sample = sample(report.taken, elapsed, histogram()?, CpuUsage::default());
        sample.writers = p as usize;
        Ok(Figure::new("F4-process", Counted::Items("events/s"), sample)
            .with("M_rss_before_apply", mib(report.rss_before_kib), "MiB")
            .with("M_rss_after_apply", mib(report.rss_after_kib), "MiB")
            .with("M_peak_rss", mib(report.peak_kib), "MiB"))
    }

    /// Runs a `ProjectionRunner` of [`TotalsProjection`] named `name` on every partition of
    /// `feed` until it has taken every event in; `tag` names the store's backends.
    async fn framework_on<F: Feed>(
        &self,
        run: &Published<'_>,
        (tag, store): (&str, PgEventStore),
        feed: F,
        (series, name): (&'static str, String),
    ) -> Result<Figure> {
        let (p, t) = (run.partitions(), self.settings.f4_tuning);
        let config = RunnerConfig::default().batch_size(t.batch).consumer(format!("{name}_fw"));
        let projection = TotalsProjection::new(name.clone())?.undoable(self.settings.undoable);
        let read_models = PgReadModels::new(&store);
        let table = format!("\"{}\".{TABLE}", read_models.projection_schema(&name));
        let runner = ProjectionRunner::new(projection, read_models, store.clone(), feed, config)?;
        runner.set_up().await?;
        self.calm().await;
        eprintln!("measuring {series} runner, {p} partitions ({} events)", run.events);
        let shutdown = CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();
        let (cpu, nats) = (CpuMark::take(self.db, tag).await, nats_server_ticks());
        let started = Instant::now();
        let task = tokio::spawn({
            let (runner, shutdown) = (runner.clone(), shutdown.clone());
            async move { runner.run(shutdown).await }
        });
        let taken = || taken_in(&runner.status().totals);
        let watched = watch(started, run.events, taken, || task.is_finished()).await;
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, tag).await, nats, started.elapsed());
        shutdown.cancel();
        let status = runner.status();
        task.await.context("the runner panicked")??;
        let watched = watched.with_context(|| format!("the runner: {status:?}"))?;
        drop(runner);
        store.pool().close().await;
        verify(self.db.admin(), &table, run.accounts, STREAM_LENGTH, DEPOSIT).await?;
        let (before, after) = (watched.before, watched.after);
        Ok(figure(series, run, &watched, cpu, nats_us, status.batches)?
            .with("undone_batches", status.totals.undone as f64, "batches")
            .with("batch_size", t.batch as f64, "events")
            .with("pull_batch", t.pull_batch as f64, "messages")
            .with("linger", t.linger.as_secs_f64() * 1000.0, "ms")
            .with("M_rss_before_apply", mib(before.rss_kib), "MiB")
            .with("M_peak_rss_during_apply", mib(watched.peak_kib), "MiB")
            .with("M_rss_growth_during_apply", mib(watched.peak_kib.saturating_sub(before.rss_kib)), "MiB"))
        .map(|f| m_peak(f, watched.peak_reset, after))
    }

    /// `raw-upsert` (`acks`) or `raw-upsert-noack`: hand-written consumers writing the same
    /// rows (see `raw_pull_consumers.rs`).
    async fn raw_upsert(&self, run: &Published<'_>, acks: bool) -> Result<Figure> {
        let p = run.partitions();
        let (series, suffix) = if acks { ("raw-upsert", "") } else { ("raw-upsert-noack", "_noack") };
        let table = format!("{}.f4_raw_p{p}{suffix}", self.db.schema());
        sqlx::query(&create_sql(&table)).execute(self.db.admin()).await?;
        let tag = self.db.next_tag();
        let pool = self.db.raw_pool(&tag, p as usize).await?;
        let sql: Arc<str> = upsert_sql(&table).into();
        let (t, work_pool) = (self.settings.f4_tuning, pool.clone());
        let work = move |messages, progress, stop| {
            raw_pull_consumers::upsert_loop(messages, work_pool.clone(), sql.clone(), t, acks, progress, stop)
        };
        let figure = self.consume(run, &tag, series, acks, work).await;
        pool.close().await;
        verify(self.db.admin(), &table, run.accounts, STREAM_LENGTH, DEPOSIT).await?;
        figure
    }

    /// `raw-pull` (`acks`) or `raw-pull-noack`: hand-written consumers that only take
    /// messages in.
    async fn no_work(&self, run: &Published<'_>, acks: bool) -> Result<Figure> {
        let series = if acks { "raw-pull" } else { "raw-pull-noack" };
        let work = move |messages, progress, stop| raw_pull_consumers::pull_loop(messages, acks, progress, stop);
        self.consume(run, "tmb-no-backends", series, acks, work).await
    }

    /// Runs `work` on a consumer per partition (durable, `<series>_P<partitions>_p<i>`, with
    /// `acks`; ephemeral without) until all events are done; `tag` names the PostgreSQL
    /// backends working for it.
    async fn consume<L, Fut>(
        &self,
        run: &Published<'_>,
        tag: &str,
        series: &'static str,
        acks: bool,
        work: L,
    ) -> Result<Figure>
    where
        L: Fn(raw_pull_consumers::Messages, Arc<Progress>, CancellationToken) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let (p, t) = (run.partitions(), self.settings.f4_tuning);
        let js = async_nats::jetstream::new(async_nats::connect(run.nats_url).await?);
        self.calm().await;
        eprintln!("measuring F4 {series}, {p} partitions");
        let progress = Arc::new(Progress::default());
        let stop = CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        let (cpu, nats) = (CpuMark::take(self.db, tag).await, nats_server_ticks());
        let started = Instant::now();
        let mut tasks: Vec<JoinHandle<Result<()>>> = Vec::new();
        for i in 0..p {
            let durable = format!("{series}_P{p}_p{i}");
            let (filter, js, stream) = (run.scheme.partition_filter(i)?, js.clone(), run.stream.clone());
            let (work, progress, stop) = (work.clone(), progress.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let messages = raw_pull_consumers::subscribe(&js, &stream, &durable, filter, t, acks).await?;
                work(messages, progress, stop).await
            }));
        }
        let done = || progress.events.load(Ordering::Relaxed);
        let watched = watch(started, run.events, done, || tasks.iter().any(JoinHandle::is_finished)).await;
        let (cpu, nats_us) = usage(cpu, &CpuMark::take(self.db, tag).await, nats, started.elapsed());
        stop.cancel();
        for task in tasks {
            task.await.context("a consumer panicked")??;
        }
        figure(series, run, &watched?, cpu, nats_us, progress.batches.load(Ordering::Relaxed))
    }

    /// Lets the machine settle before a measurement (not in `--quick`).
    pub(crate) async fn calm(&self) {
        if !self.settings.quiet_wait.is_zero() {
            self.db.settle(self.settings.quiet_wait).await;
        }
    }
}

fn projection_name(partitions: u32) -> String {
    format!("f4_p{partitions}")
}

/// Polls `done` every 2 ms until it reaches `events` (sampling the resident set every
/// 10 ms); fails when `stopped` says a consumer ended first, after [`STALL`] without
/// progress, or after [`LIMIT`].
async fn watch(started: Instant, events: u64, done: impl Fn() -> u64, stopped: impl Fn() -> bool) -> Result<Watched> {
    let peak_reset = memory::reset_peak();
    let before = memory::now();
    let mut peak_kib = before.rss_kib;
    let (mut last, mut moved) = (0, Instant::now());
    for poll in 0u64.. {
        let now = done();
        if now >= events {
            break;
        }
        if now != last {
            (last, moved) = (now, Instant::now());
        }
        if stopped() || moved.elapsed() > STALL || started.elapsed() > LIMIT {
            bail!("stopped or stalled after {now} of {events} events");
        }
        if poll % 5 == 0 {
            peak_kib = peak_kib.max(memory::now().rss_kib);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let after = memory::now();
    Ok(Watched { elapsed, before, peak_kib: peak_kib.max(after.rss_kib), after, peak_reset })
}

fn figure(
    series: &'static str,
    run: &Published<'_>,
    w: &Watched,
    cpu: CpuUsage,
    nats_us: f64,
    batches: u64,
) -> Result<Figure> {
    let mut sample = sample(run.events, w.elapsed, histogram()?, cpu);
    sample.writers = run.partitions() as usize;
    let mut figure = Figure::new(series, Counted::Items("events/s"), sample).with(
        "nats_server_cpu_per_event",
        nats_us / run.events.max(1) as f64,
        "us",
    );
    if batches > 0 {
        figure = figure.with("mean_batch", run.events as f64 / batches as f64, "events");
    }
    Ok(figure)
}

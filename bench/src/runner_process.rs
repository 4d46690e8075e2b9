//! M, runner part: the F4 runner in a process of its own. The bench binary starts itself
//! again with [`CHILD_ENV`] set to a [`RunnerJob`]; the child runs one `ProjectionRunner`
//! until it has taken every event in and prints its own peak resident set (VmHWM), which
//! is then the runner's alone, not the bench process's (which holds what its earlier
//! measurements left behind).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use tidemark_nats::{ConsumerSettings, JetStreamFeed, MessageKey, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{BatchReport, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::memory;

/// The environment variable that makes the bench binary a runner process: its value is a
/// [`RunnerJob`] in JSON.
pub(crate) const CHILD_ENV: &str = "TIDEMARK_BENCH_RUNNER_JOB";

/// Longest time without progress before the child gives up.
const STALL: Duration = Duration::from_secs(60);

/// What the runner process runs: F4's runner on one published stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunnerJob {
    pub database_url: String,
    /// The store's schema.
    pub schema: String,
    /// The `application_name` of its connections.
    pub tag: String,
    pub nats_url: String,
    pub stream: String,
    pub subject_prefix: String,
    pub partitions: u32,
    /// Events to take in before it stops.
    pub events: u64,
    /// The projection's (and read model's) name.
    pub projection: String,
    pub batch: usize,
    pub pull_batch: usize,
    pub linger_ms: u64,
    pub keyed_feed: bool,
    pub undoable: bool,
}

/// What the runner process reports on its standard output (one JSON line).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct RunnerReport {
    /// The process's peak resident set over its whole life, KiB.
    pub peak_kib: u64,
    /// Its resident set once the runner was set up, before it ran, KiB.
    pub rss_before_kib: u64,
    /// Its resident set when every event was in, KiB.
    pub rss_after_kib: u64,
    /// From the runner's start until every event was in.
    pub elapsed_us: u64,
    /// Events applied, skipped or dead-lettered.
    pub taken: u64,
}

/// Runs `job` in a new process of this binary and returns its report; its standard error
/// passes through.
pub(crate) async fn run_in_child(job: &RunnerJob, limit: Duration) -> Result<RunnerReport> {
    let exe = std::env::current_exe().context("finding the bench binary")?;
    let child = tokio::process::Command::new(exe)
        .env(CHILD_ENV, serde_json::to_string(job)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the runner process")?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("the runner process ran longer than {limit:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the runner process failed ({}): {stdout}", output.status);
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the runner process's report {line:?}"))
}

/// The child's side: runs the job and prints its report. Returns an error (the process
/// exits non-zero) when the runner stops or stalls first.
pub(crate) fn child_main(job: &str) -> Result<()> {
    let job: RunnerJob = serde_json::from_str(job).context("reading the runner job")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(&job))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn run(job: &RunnerJob) -> Result<RunnerReport> {
    let mut url = url::Url::parse(&job.database_url).context("parsing DATABASE_URL")?;
    url.query_pairs_mut().append_pair("application_name", &job.tag);
    // As in the bench process: a connection per partition, two more for the store's tasks.
    let connections = job.partitions.saturating_add(2);
    let config = PgStoreConfig::default().schema(&job.schema).max_connections(connections);
    let store = PgEventStore::connect(url.as_str(), config).await?;
    let client = async_nats::connect(job.nats_url.as_str()).await?;
    let scheme = SubjectScheme::new(&job.subject_prefix, job.partitions)?;
    let consumer = ConsumerSettings::default().pull_batch(job.pull_batch).linger(Duration::from_millis(job.linger_ms));
    let mut feed = JetStreamFeed::new(async_nats::jetstream::new(client), &job.stream, scheme).with_settings(consumer);
    if job.keyed_feed {
        feed = feed.with_message_key(MessageKey::load(&store).await?);
    }
    let config = RunnerConfig::default().batch_size(job.batch).consumer(format!("{}_fw", job.projection));
    let projection = crate::read_model::TotalsProjection::new(job.projection.clone())?.undoable(job.undoable);
    let runner = ProjectionRunner::new(projection, PgReadModels::new(&store), store.clone(), feed, config)?;
    runner.set_up().await?;

    let before = memory::now();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let started = Instant::now();
    let task = tokio::spawn({
        let (runner, shutdown) = (runner.clone(), shutdown.clone());
        async move { runner.run(shutdown).await }
    });
    let taken = || taken_in(&runner.status().totals);
    let (mut last, mut moved) = (0, Instant::now());
    loop {
        let now = taken();
        if now >= job.events {
            break;
        }
        if now != last {
            (last, moved) = (now, Instant::now());
        }
        if task.is_finished() || moved.elapsed() > STALL {
            bail!("the runner stopped or stalled after {now} of {} events: {:?}", job.events, runner.status());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let after = memory::now();
    shutdown.cancel();
    task.await.context("the runner panicked")??;
    store.pool().close().await;
    Ok(RunnerReport {
        peak_kib: after.hwm_kib,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        taken: taken(),
    })
}

/// Events a runner has taken in: applied, skipped or dead-lettered.
pub(crate) fn taken_in(totals: &BatchReport) -> u64 {
    totals.applied + totals.skipped + totals.dead_lettered
}

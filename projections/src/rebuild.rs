//! Rebuilding a projection from the event store's log into a shadow, then swapping it in.
//!
//! The shadow is the same projection working under the name `<name>~rebuild` (its own
//! schema on PostgreSQL, its own seen versions), fed from the PostgreSQL log directly in
//! large batches while the live model keeps serving. At the end one transaction locks
//! every live partition (live batches wait), applies what the log gained meanwhile, and
//! swaps data, seen versions and dead letters in. Every live partition's position moves up
//! to the shadow's (everything below it is in the swapped-in data); its feed cursor stays,
//! so the live runner goes on from there: what the shadow already holds is skipped as seen,
//! nothing is missed because the shadow took in everything readable at the swap.
//! Interrupted, the live model is untouched and the next rebuild resumes from the shadow's
//! position.

use std::time::{Duration, Instant};

use tidemark::{EventStore, LogPosition};
use tokio_util::sync::CancellationToken;

use crate::admin::ReadModelsAdmin;
use crate::config::PoisonPolicy;
use crate::error::{ProjectionError, Result};
use crate::feed::Incoming;
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::read_models::Progress;
use crate::rebuild_pages::{self, Page};
use crate::worker::Batch;
use crate::worker::Worker;

/// How a rebuild goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RebuildOptions {
    /// Events read from the log and applied per transaction (default 5,000).
    pub batch_size: usize,
    /// Throw away an interrupted rebuild's shadow instead of resuming it (default false).
    pub restart: bool,
    /// Stops the rebuild between batches, leaving the shadow to resume later.
    pub stop: CancellationToken,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self { batch_size: 5_000, restart: false, stop: CancellationToken::new() }
    }
}

impl RebuildOptions {
    /// Sets the batch size (at least 1).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Starts from scratch even when an interrupted rebuild could resume.
    pub fn restart(mut self, restart: bool) -> Self {
        self.restart = restart;
        self
    }

    /// Stops between batches when `stop` fires.
    pub fn stop_on(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }
}

/// Where a rebuild is, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RebuildProgress {
    /// Events taken in by this run.
    pub events: u64,
    /// The log position the shadow has reached.
    pub position: LogPosition,
    /// Where this run started (after an interrupted one, its position).
    pub resumed_from: LogPosition,
    /// The log's head when this run started.
    pub head: LogPosition,
    /// Time since this run started.
    pub elapsed: Duration,
}

impl RebuildProgress {
    /// An estimate of the events left before the head: the difference of sequence
    /// numbers (which may have holes, so it errs high).
    pub fn remaining_estimate(&self) -> u64 {
        self.head.sequence.saturating_sub(self.position.sequence)
    }

    /// Events per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.events as f64 / secs
        } else {
            0.0
        }
    }
}

/// How a rebuild ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildOutcome {
    /// The shadow was swapped in.
    Completed {
        /// Events taken in by this run (the last catch-up included).
        events: u64,
        /// How long it took.
        elapsed: Duration,
    },
    /// Another instance swapped its rebuild in first; this one's shadow was dropped.
    AlreadyRebuilt,
    /// Stopped between batches; the live model is untouched and a new rebuild resumes.
    Interrupted {
        /// The shadow's position.
        at: LogPosition,
    },
}

/// The name a projection's shadow works under (`~` cannot appear in a projection name).
pub(crate) fn shadow_name(projection: &str) -> String {
    format!("{projection}~rebuild")
}

pub(crate) async fn rebuild<P, R, S>(
    live: &Worker<P, R, S>,
    partitions: u32,
    policy: PoisonPolicy,
    options: &RebuildOptions,
    progress: &mut (dyn FnMut(&RebuildProgress) + Send),
) -> Result<RebuildOutcome>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    let started = Instant::now();
    let shadow = live.renamed(shadow_name(&live.name));
    if options.restart {
        drop_shadow(&shadow).await?;
    }
    match shadow.ensure_set_up().await {
        Err(ProjectionError::VersionChanged { .. }) => {
            tracing::info!(projection = %live.name, "an older rebuild's shadow is of another version: starting over");
            drop_shadow(&shadow).await?;
            shadow.ensure_set_up().await?;
        }
        other => other?,
    }
    let resumed_from = shadow.read_models.partitions(&shadow.name).await?.first().map(|(_, s)| s.position);
    let resumed_from = resumed_from.unwrap_or(LogPosition::START);
    let head = live.store.log_head().await?.unwrap_or(LogPosition::START);
    let mut report = RebuildProgress { events: 0, position: resumed_from, resumed_from, head, elapsed: Duration::ZERO };
    tracing::info!(projection = %live.name, from = %resumed_from, to = %head, "rebuilding from the log");
    // Pages go unchecked while they can (see `rebuild_pages`).
    let mut unchecked = rebuild_pages::unchecked(&shadow).await?;
    // Reading the next page overlaps with applying the current one.
    let mut batch = live.store.read_log(report.position, options.batch_size).await?;
    while let Some(last) = batch.last().map(|e| e.position) {
        if options.stop.is_cancelled() {
            return Ok(RebuildOutcome::Interrupted { at: report.position });
        }
        let count = batch.len() as u64;
        if unchecked {
            let applying = rebuild_pages::apply_unchecked(&shadow, &batch, report.position);
            let (applied, next) = tokio::join!(applying, live.store.read_log(last, options.batch_size));
            match applied? {
                Page::Applied => batch = next?,
                Page::Elsewhere(at) => {
                    if at < report.position && shadow_gone(&shadow).await? {
                        return Ok(RebuildOutcome::AlreadyRebuilt);
                    }
                    tracing::info!(projection = %live.name, %at, "another rebuild moved the shadow: going on from there");
                    // Behind this rebuild, the shadow was started again by another one:
                    // its pages are checked from now on, as they are once the other one
                    // has parked a stream.
                    unchecked = at > report.position && rebuild_pages::unchecked(&shadow).await?;
                    report.position = at;
                    batch = live.store.read_log(at, options.batch_size).await?;
                    continue;
                }
                Page::Failed => {
                    unchecked = false;
                    let incoming: Vec<Incoming> = batch.into_iter().map(Incoming::Trusted).collect();
                    apply(&shadow, &incoming, policy).await?;
                    batch = next?;
                }
            }
        } else {
            let incoming: Vec<Incoming> = batch.into_iter().map(Incoming::Trusted).collect();
            let (applied, next) =
                tokio::join!(apply(&shadow, &incoming, policy), live.store.read_log(last, options.batch_size));
            applied?;
            batch = next?;
        }
        report.events += count;
        report.position = last;
        report.elapsed = started.elapsed();
        crate::metrics::rebuild_progress(&live.name, count, &report);
        progress(&report);
    }
    if !swap(live, &shadow, partitions, options, &mut report).await? {
        return Ok(RebuildOutcome::AlreadyRebuilt);
    }
    tracing::info!(projection = %live.name, events = report.events, elapsed = ?started.elapsed(), "rebuild swapped in");
    Ok(RebuildOutcome::Completed { events: report.events, elapsed: started.elapsed() })
}

/// Applies one page to the shadow; a poison event is parked (or skipped) like the live
/// runner would.
async fn apply<P, R, S>(shadow: &Worker<P, R, S>, incoming: &[Incoming], policy: PoisonPolicy) -> Result<()>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    match shadow.apply_and_commit(0, incoming, None).await {
        Err(ProjectionError::Apply { .. }) if policy != PoisonPolicy::Halt => {
            shadow.apply_one_by_one(0, incoming, &[], policy).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Locks the live partitions, catches the shadow up with the log and swaps it in, in one
/// transaction, moving each of the `partitions` live partitions' positions up to the
/// shadow's. False when the shadow is gone: another instance swapped it in first.
async fn swap<P, R, S>(
    live: &Worker<P, R, S>,
    shadow: &Worker<P, R, S>,
    partitions: u32,
    options: &RebuildOptions,
    report: &mut RebuildProgress,
) -> Result<bool>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    let read_models = &live.read_models;
    let mut tx = read_models.begin().await?;
    // The set-up lock serialises swaps of the same projection.
    let version = live.projection.version();
    read_models.set_up_version(&mut tx, &live.name).await?;
    if read_models.set_up_version(&mut tx, &shadow.name).await? != Some(version) {
        read_models.commit(tx).await?;
        return Ok(false);
    }
    read_models.lock_projection(&mut tx, &live.name).await?;
    loop {
        let batch = live.store.read_log(report.position, options.batch_size).await?;
        let Some(last) = batch.last().map(|e| e.position) else { break };
        report.events += batch.len() as u64;
        let incoming: Vec<Incoming> = batch.into_iter().map(Incoming::Trusted).collect();
        let mut batch = Batch::within(0, tx);
        shadow.apply(&mut batch, &incoming, None).await?;
        tx = batch.into_tx()?;
        report.position = last;
    }
    read_models.swap(&mut tx, &live.name, &shadow.name, version).await?;
    let floor = Progress { position: report.position, ..Progress::default() };
    for partition in 0..partitions {
        read_models.record(&mut tx, &live.name, partition, &floor).await?;
    }
    read_models.commit(tx).await?;
    Ok(true)
}

/// Whether the shadow is gone: another instance swapped it in, or dropped it.
async fn shadow_gone<P, R, S>(shadow: &Worker<P, R, S>) -> Result<bool>
where
    R: ReadModelsAdmin,
    P: Projection<R>,
{
    let mut tx = shadow.read_models.begin().await?;
    let version = shadow.read_models.set_up_version(&mut tx, &shadow.name).await?;
    shadow.read_models.commit(tx).await?;
    Ok(version != Some(shadow.projection.version()))
}

async fn drop_shadow<P, R: ReadModelsAdmin, S>(shadow: &Worker<P, R, S>) -> Result<()> {
    let mut tx = shadow.read_models.begin().await?;
    shadow.read_models.drop_projection(&mut tx, &shadow.name).await?;
    shadow.read_models.commit(tx).await
}

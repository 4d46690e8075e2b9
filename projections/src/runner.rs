//! The projection runner: one loop per partition, all in this process or shared between
//! instances.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use tidemark::{AppendOutcome, EventStore, StreamId, StreamVersion};
use tokio_util::sync::CancellationToken;

use crate::admin::ReadModelsAdmin;
use crate::config::{RunnerConfig, VersionChange};
use crate::coordinate::{coordinate, Coordinator};
use crate::error::{check_name, ProjectionError, Result};
use crate::feed::Feed;
use crate::lag::{self, Lag};
use crate::letters::{DeadLetter, RogueMessage};
use crate::metrics;
use crate::optimisations::BatchOptimisations;
use crate::partition::{run_partition, PauseGate, Shared};
use crate::projection::Projection;
use crate::rebuild::{rebuild, shadow_name, RebuildOptions, RebuildOutcome, RebuildProgress};
use crate::replay::{replay, ReplayFrom, ReplayReport};
use crate::status::{RunnerStatus, StatusCell};
use crate::wait::wait_for_version;
use crate::worker::{BatchReport, Worker};

/// Runs one projection: takes batches from a [`Feed`], applies them through the
/// projection in [`ReadModels`](crate::ReadModels) transactions together with each batch's feed cursor, and
/// opens every subscription after the cursor last committed.
///
/// - `run` applies every partition in this process (the embedded mode, one instance).
/// - `run_shared` splits the partitions with the other instances of the same projection
///   through a [`Coordinator`] (PostgreSQL advisory locks, for one), and takes over those
///   of an instance that dies.
pub struct ProjectionRunner<P, R, S, F> {
    shared: Arc<Shared<P, R, S, F>>,
}

impl<P, R, S, F> fmt::Debug for ProjectionRunner<P, R, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.shared.worker.name)
            .field("consumer", &self.shared.consumer)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<P, R, S, F> Clone for ProjectionRunner<P, R, S, F> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<P, R, S, F> ProjectionRunner<P, R, S, F>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    /// A runner of `projection`, writing to `read_models`, reading gap repairs and thin
    /// notifications from `store`, fed by `feed`. Fails on an invalid projection or
    /// consumer name.
    pub fn new(projection: P, read_models: R, store: S, feed: F, config: RunnerConfig) -> Result<Self> {
        let name = projection.name().to_owned();
        check_name(&name)?;
        let consumer = config.consumer.clone().unwrap_or_else(|| name.clone());
        check_name(&consumer)?;
        let worker = Worker {
            projection: Arc::new(projection),
            read_models,
            store: Arc::new(store),
            name,
            careful: AtomicU32::new(0),
        };
        let shared =
            Shared { worker, feed, config, consumer, status: StatusCell::default(), pause: PauseGate::default() };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.shared.worker.name
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.shared.worker.projection
    }

    /// Where the projection's read model lives.
    pub fn read_models(&self) -> &R {
        &self.shared.worker.read_models
    }

    /// What the runner is doing.
    pub fn status(&self) -> RunnerStatus {
        self.shared.status.snapshot()
    }

    /// Runs the projection's set-up if its version has not been set up yet; fails when
    /// the tables were set up by another version (rebuild first).
    pub async fn set_up(&self) -> Result<()> {
        self.shared.worker.ensure_set_up().await
    }

    /// Makes the read model ready to run: builds it from the log when it does not exist
    /// yet (a new projection, or one reset), and rebuilds it when the projection's version
    /// changed (or refuses, as configured).
    pub async fn prepare(&self) -> Result<()> {
        let worker = &self.shared.worker;
        let current = worker.projection.version();
        let stored = {
            let mut tx = worker.read_models.begin().await?;
            let stored = worker.read_models.set_up_version(&mut tx, &worker.name).await?;
            worker.read_models.commit(tx).await?;
            stored
        };
        match stored {
            Some(version) if version == current => return Ok(()),
            Some(stored) if self.shared.config.version_change == VersionChange::Refuse => {
                return Err(ProjectionError::VersionChanged { projection: worker.name.clone(), stored, current });
            }
            Some(stored) => {
                tracing::warn!(projection = %worker.name, stored, current, "the projection's version changed: rebuilding")
            }
            None => tracing::info!(projection = %worker.name, "a new read model: building it from the log"),
        }
        self.rebuild(RebuildOptions::default(), &mut |_| {}).await.map(|_| ())
    }

    /// Rebuilds the read model from the event store's log into a shadow while the live one
    /// keeps serving, then swaps it in atomically. `progress` is called after each batch.
    pub async fn rebuild(
        &self,
        options: RebuildOptions,
        progress: &mut (dyn FnMut(&RebuildProgress) + Send),
    ) -> Result<RebuildOutcome> {
        let partitions = self.shared.feed.partitions();
        // Boxed: the rebuild's future is deep, and callers that spawn `prepare` or `run`
        // would otherwise need a higher recursion limit to compute its layout.
        Box::pin(rebuild(&self.shared.worker, partitions, self.shared.config.poison, &options, progress)).await
    }

    /// Applies again, in place, the events after `from` that the projection has taken in,
    /// up to the log's head, `batch_size` a transaction (see [`ReplayFrom`]): for a
    /// projection whose code changed in a way its idempotent `apply` can bring the read
    /// model up to without a rebuild. Runners may keep running; positions and seen
    /// versions stay. A projection that is not idempotent counts the events twice.
    pub async fn replay(&self, from: ReplayFrom, batch_size: usize) -> Result<ReplayReport> {
        let feed = &self.shared.feed;
        let partition_of = |stream: &StreamId| feed.partition_of(stream);
        replay(&self.shared.worker, &partition_of, from, batch_size).await
    }

    /// Deletes the read model, its bookkeeping and dead letters, and any interrupted
    /// rebuild. The next start builds it again from the log.
    pub async fn reset(&self) -> Result<()> {
        let worker = &self.shared.worker;
        let mut tx = worker.read_models.begin().await?;
        worker.read_models.lock_projection(&mut tx, &worker.name).await?;
        worker.read_models.drop_projection(&mut tx, &worker.name).await?;
        worker.read_models.drop_projection(&mut tx, &shadow_name(&worker.name)).await?;
        worker.read_models.commit(tx).await
    }

    /// Pauses the projection (`true`) or resumes it: its runners, in every process, take
    /// no batch while it is paused, from at most half a second after this on. The flag
    /// is stored with the read models and outlives restarts. Returns whether it changed.
    pub async fn set_paused(&self, paused: bool) -> Result<bool> {
        self.shared.worker.read_models.set_paused(&self.shared.worker.name, paused).await
    }

    /// Whether the projection is paused (read from the read models).
    pub async fn is_paused(&self) -> Result<bool> {
        self.shared.worker.read_models.paused(&self.shared.worker.name).await
    }

    /// Measures how far the projection is behind the log: the events up to the log's
    /// head that it has not taken in, whoever holds them (a runner that died with them
    /// included), and the age of the oldest. See [`Lag`].
    pub async fn lag(&self) -> Result<Lag> {
        Ok(self.measure_lag().await?.lag)
    }

    /// Measures the lag like [`lag`](Self::lag) and sets the lag gauges from it: for a
    /// process that watches a projection it does not run, so that the gauges keep moving
    /// while the processes running it are dead or stalled.
    pub async fn export_lag(&self) -> Result<Lag> {
        let lag = self.lag().await?;
        metrics::lag_measured(self.name(), &lag);
        Ok(lag)
    }

    async fn measure_lag(&self) -> Result<lag::Measured> {
        let (worker, config, feed) = (&self.shared.worker, &self.shared.config, &self.shared.feed);
        let partition_of = |stream: &StreamId| feed.partition_of(stream);
        let (store, limit) = (&*worker.store, config.lag_scan_limit);
        lag::measure(&worker.read_models, store, &worker.name, feed.partitions(), &partition_of, limit).await
    }

    /// Measures the lag every `lag_interval` until `stop`, for the status and the gauges,
    /// and moves up the positions of partitions the measurement found nothing left in, so
    /// that the next one starts further on.
    async fn watch_lag(&self, stop: CancellationToken) {
        let interval = self.shared.config.lag_interval;
        if interval.is_zero() {
            return;
        }
        loop {
            match self.measure_lag().await {
                Ok(measured) => {
                    metrics::lag_measured(self.name(), &measured.lag);
                    self.shared.status.lag(measured.lag);
                    for (partition, position) in measured.floors() {
                        if let Err(e) = self.shared.worker.raise_position(partition, position).await {
                            tracing::debug!(projection = %self.name(), partition, error = %e, "moving a position up failed");
                        }
                    }
                }
                Err(e) => tracing::debug!(projection = %self.name(), error = %e, "measuring the lag failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Applies every partition in this process until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        // Boxed here and below: the futures of a rebuild and of the partition loops are
        // deep types, and a caller spawning `run` would otherwise need a higher
        // `recursion_limit` to compute its future's layout.
        Box::pin(self.prepare()).await?;
        let stop = shutdown.child_token();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn({
            let (runner, stop) = (self.clone(), stop.clone());
            async move { runner.watch_lag(stop).await }
        });
        for partition in 0..self.shared.feed.partitions() {
            self.shared.status.owns(partition, true);
            tasks.spawn(run_partition(self.shared.clone(), partition, stop.clone()));
        }
        while tasks.join_next().await.is_some() {}
        for partition in 0..self.shared.feed.partitions() {
            self.shared.status.owns(partition, false);
        }
        Ok(())
    }

    /// Shares the partitions with the other instances meeting at `coordinator` until
    /// `shutdown`.
    ///
    /// Preparing (see [`prepare`](Self::prepare)) happens in one instance at a time; a
    /// failure that may pass (database unreachable) is retried with backoff until
    /// `shutdown`, any other is returned.
    pub async fn run_shared<C: Coordinator>(&self, coordinator: C, shutdown: CancellationToken) -> Result<()> {
        let mut backoff = self.shared.config.retry_delays();
        loop {
            match self.prepare_exclusively(&coordinator).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() && !matches!(e, ProjectionError::Apply { .. }) => {
                    tracing::warn!(projection = %self.name(), error = %e, "preparing failed; retrying");
                    self.shared.status.failed(e.to_string());
                }
                Err(e) => return Err(e),
            }
            if !backoff.pause(shutdown.cancelled()).await {
                return Ok(());
            }
        }
        let watching = tokio::spawn({
            let (runner, stop) = (self.clone(), shutdown.child_token());
            async move { runner.watch_lag(stop).await }
        });
        Box::pin(coordinate(self.shared.clone(), coordinator, shutdown)).await;
        watching.abort();
        Ok(())
    }

    /// One instance prepares (perhaps rebuilds); the others wait, then find it ready.
    async fn prepare_exclusively<C: Coordinator>(&self, coordinator: &C) -> Result<()> {
        let guard = coordinator.exclusive("prepare", &self.shared.consumer).await?;
        let prepared = Box::pin(self.prepare()).await;
        drop(guard);
        prepared
    }

    /// Waits until the projection has taken in `stream` up to `version` (read-your-writes),
    /// or fails with [`ProjectionError::WaitTimedOut`](crate::ProjectionError::WaitTimedOut).
    pub async fn wait_for(&self, stream: &StreamId, version: StreamVersion, timeout: Duration) -> Result<()> {
        let worker = &self.shared.worker;
        let commits = Some(self.shared.status.commits());
        wait_for_version(&worker.read_models, &worker.name, stream, version, timeout, commits).await
    }

    /// Every dead letter of the projection, parked and skipped, by stream and version.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.shared.worker.read_models.dead_letters(&self.shared.worker.name).await
    }

    /// Applies the parked events of `stream` again, in order (after a fix), and unparks
    /// it; on failure nothing changes and the error says why. Returns how many events the
    /// projection applied.
    pub async fn retry_parked(&self, stream: &StreamId) -> Result<u64> {
        self.shared.worker.retry_parked(self.shared.feed.partition_of(stream), stream).await
    }

    /// Marks the parked events of `stream` skipped (kept as a record) and unparks it.
    /// Returns how many were skipped.
    pub async fn skip_parked(&self, stream: &StreamId) -> Result<u64> {
        self.shared.worker.skip_parked(self.shared.feed.partition_of(stream), stream).await
    }

    /// The rogue messages recorded for this projection (parked and skipped): messages on
    /// its subjects that were not events of the store.
    pub async fn rogue_messages(&self) -> Result<Vec<RogueMessage>> {
        self.shared.worker.read_models.rogue_messages(&self.shared.worker.name).await
    }

    /// Marks parked rogue messages skipped (kept as a record): the one with `key`, or all
    /// of them. Returns how many.
    pub async fn skip_rogue(&self, key: Option<&str>) -> Result<u64> {
        let read_models = &self.shared.worker.read_models;
        let mut tx = read_models.begin().await?;
        let skipped = read_models.skip_rogue(&mut tx, &self.shared.worker.name, key).await?;
        read_models.commit(tx).await?;
        Ok(skipped)
    }

    /// Rebuilds the rows of one stream from the store (the projection must implement
    /// [`Projection::forget_stream`]); its dead letters are dropped. Returns what was applied.
    pub async fn rebuild_stream(&self, stream: &StreamId) -> Result<BatchReport> {
        self.shared.worker.rebuild_stream(self.shared.feed.partition_of(stream), stream).await
    }

    /// Waits until the projection has taken in everything `outcome` appended.
    pub async fn wait_for_append(&self, outcome: &AppendOutcome, timeout: Duration) -> Result<()> {
        self.wait_for(&outcome.stream_id, outcome.version, timeout).await
    }
}

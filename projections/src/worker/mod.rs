//! Applying batches of one projection: each batch in one transaction that locks the
//! partition, skips what was seen, repairs gaps from the store, applies, records progress
//! and commits ([`batch`] holds its state machine); a batch that keeps failing is taken
//! one message at a time ([`isolate`]); operators retry, skip and rebuild ([`operator`]).

mod batch;
mod checked;
mod isolate;
mod operator;
mod speculate;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use tidemark::{EventStore, LogPosition};

pub(crate) use batch::Batch;

use crate::admin::ReadModelsAdmin;
use crate::error::{ProjectionError, Result};
use crate::feed::FeedCursor;
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::read_models::{Progress, ReadModels};

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchReport {
    /// Events handed to the projection.
    pub applied: u64,
    /// Events of types the projection does not handle, passed over.
    pub skipped: u64,
    /// Redeliveries and duplicates: stream versions already seen.
    pub duplicates: u64,
    /// Events read from the store to fill a gap in a stream's versions.
    pub repaired: u64,
    /// Messages that were not events of the store, parked as rogue messages.
    pub rogue: u64,
    /// Events sent to the dead letters (poison events and those parked behind them).
    pub dead_lettered: u64,
    /// Batches applied before their check and undone because the check refused them (or
    /// the projection failed on one of their events), then applied with the check first.
    pub undone: u64,
}

impl BatchReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, other: BatchReport) {
        self.applied += other.applied;
        self.skipped += other.skipped;
        self.duplicates += other.duplicates;
        self.repaired += other.repaired;
        self.rogue += other.rogue;
        self.dead_lettered += other.dead_lettered;
        self.undone += other.undone;
    }
}

/// Everything a partition loop needs to apply batches of one projection.
#[derive(Debug)]
pub(crate) struct Worker<P, R, S> {
    pub projection: Arc<P>,
    pub read_models: R,
    pub store: Arc<S>,
    pub name: String,
    /// How many more batches are checked before they are applied, after a batch applied
    /// first had to be undone (redeliveries come in runs, after a restart).
    pub careful: AtomicU32,
}

impl<P, R: Clone, S> Worker<P, R, S> {
    /// The same projection, working under another name (a rebuild's shadow).
    pub(crate) fn renamed(&self, name: String) -> Self {
        Self {
            projection: self.projection.clone(),
            read_models: self.read_models.clone(),
            store: self.store.clone(),
            name,
            careful: AtomicU32::new(0),
        }
    }
}

impl<P, R, S> Worker<P, R, S>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Moves `partition`'s recorded position up to `position` (never down), in a
    /// transaction of its own that takes the partition's lock: every event of the
    /// partition up to `position` must have been taken in.
    pub(crate) async fn raise_position(&self, partition: u32, position: LogPosition) -> Result<()> {
        let mut tx = self.read_models.begin_batch(&self.name, partition).await?;
        let progress = Progress { position, ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await
    }
}

impl<P, R, S> Worker<P, R, S>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Whether to begin batches early (see [`BatchOptimisations::begins_early`]).
    pub(crate) fn begins_early(&self) -> bool {
        self.read_models.begins_early()
    }
}

impl<P, R, S> Worker<P, R, S>
where
    R: ReadModelsAdmin,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Runs the projection's set-up if this version has not been set up yet.
    pub(crate) async fn ensure_set_up(&self) -> Result<()> {
        let mut tx = self.read_models.begin().await?;
        let current = self.projection.version();
        match self.read_models.set_up_version(&mut tx, &self.name).await? {
            Some(stored) if stored == current => self.read_models.commit(tx).await,
            Some(stored) => Err(ProjectionError::VersionChanged { projection: self.name.clone(), stored, current }),
            None => {
                self.read_models.create_namespace(&mut tx, &self.name).await?;
                let setup = self.projection.setup(&mut tx).await;
                setup.map_err(|source| ProjectionError::Setup { projection: self.name.clone(), source })?;
                self.read_models.mark_set_up(&mut tx, &self.name, current).await?;
                self.read_models.commit(tx).await
            }
        }
    }

    /// The feed cursor recorded with `partition`'s last committed batch.
    pub(crate) async fn cursor(&self, partition: u32) -> Result<Option<FeedCursor>> {
        let partitions = self.read_models.partitions(&self.name).await?;
        Ok(partitions.into_iter().find(|(p, _)| *p == partition).and_then(|(_, state)| state.cursor))
    }
}

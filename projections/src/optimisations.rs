//! Optional shortcuts of a read-model backend: undoable batches and early begins.

use std::future::Future;

use tidemark::{StreamId, StreamVersion};

use crate::error::{ProjectionError, Result};
use crate::read_models::{Progress, ReadModels};

/// How [`BatchOptimisations::commit_if_seen`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckedCommit<T> {
    /// The batch was recorded and its transaction committed.
    Committed,
    /// Some stream was not last seen where the batch expected (or is parked): nothing was
    /// recorded, and here is the transaction, still open, holding the batch's writes.
    Refused(T),
}

/// What a [`ReadModels`] backend may do to make batches cheaper. Every method has a
/// default that says "not supported", so a backend without them implements it with an
/// empty `impl`.
pub trait BatchOptimisations: ReadModels {
    /// Whether the runner should begin a partition's next batch transaction while it
    /// waits for that batch, taking the round trip of [`begin_batch`](ReadModels::begin_batch)
    /// out of the batch's latency. Such a transaction holds a connection and the batch's
    /// locks while it waits, for a short time at most: the runner commits it unused when
    /// no batch comes. By default false; PostgreSQL says true while its pool has a
    /// connection to spare.
    fn begins_early(&self) -> bool {
        false
    }

    /// Whether a transaction from [`begin_batch`](ReadModels::begin_batch) holds the batch's
    /// locks already and marks a point [`undo_batch`](Self::undo_batch) returns to. Then
    /// the runner may apply a batch before reading which of its events were seen, and
    /// check that when it records the batch with [`record_if_seen`](Self::record_if_seen).
    /// By default false: every batch is checked first.
    fn undoes_batches(&self) -> bool {
        false
    }

    /// Records a batch's progress, as [`record`](ReadModels::record) does, only if every stream
    /// of `progress.streams` was last seen at the version `expected` gives for it (the same
    /// order; 0 for a stream never seen) and is not parked. Returns whether it recorded;
    /// when it did not, the transaction may hold writes of the call, which
    /// [`undo_batch`](Self::undo_batch) removes. By default it reads the seen versions, then
    /// records.
    fn record_if_seen(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        partition: u32,
        progress: &Progress,
        expected: &[StreamVersion],
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let streams: Vec<StreamId> = progress.streams.iter().map(|(s, _)| s.clone()).collect();
            let seen = self.seen_versions(tx, projection, &streams).await?;
            let as_expected = streams.len() == expected.len()
                && streams.iter().zip(expected).all(|(stream, expected)| {
                    let last = seen.get(stream).copied().unwrap_or_default();
                    !last.parked && last.version == *expected
                });
            if as_expected {
                self.record(tx, projection, partition, progress).await?;
            }
            Ok(as_expected)
        }
    }

    /// [`record_if_seen`](Self::record_if_seen), then [`commit`](ReadModels::commit) when it
    /// recorded: backends may do both in one round trip, and so hold the transaction's
    /// writes for one round trip less. When it did not record, the transaction comes back
    /// as it was, for [`undo_batch`](Self::undo_batch). By default the two calls, in turn.
    fn commit_if_seen(
        &self,
        tx: Self::Tx,
        projection: &str,
        partition: u32,
        progress: &Progress,
        expected: &[StreamVersion],
    ) -> impl Future<Output = Result<CheckedCommit<Self::Tx>>> + Send {
        async move {
            let mut tx = tx;
            if self.record_if_seen(&mut tx, projection, partition, progress, expected).await? {
                self.commit(tx).await?;
                Ok(CheckedCommit::Committed)
            } else {
                Ok(CheckedCommit::Refused(tx))
            }
        }
    }

    /// Removes every write of a transaction from [`begin_batch`](ReadModels::begin_batch) made
    /// since it began, keeping its locks: the batch can then be applied again. Only called
    /// when [`undoes_batches`](Self::undoes_batches) is true; by default it fails.
    fn undo_batch(&self, tx: &mut Self::Tx) -> impl Future<Output = Result<()>> + Send {
        let _ = tx;
        async { Err(ProjectionError::Config("this read-model backend cannot undo a batch")) }
    }
}

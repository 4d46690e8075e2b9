//! Where read models live: the transaction a batch runs in and the runtime's bookkeeping
//! kept inside it.

use std::collections::HashMap;
use std::future::Future;

use tidemark::{LogPosition, StreamId, StreamVersion};

use crate::error::Result;
use crate::feed::FeedCursor;
use crate::letters::{DeadLetter, RogueMessage};

/// What one committed batch moved forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The highest log position applied in the partition.
    pub position: LogPosition,
    /// The feed cursor of the batch's last message (none for work that did not come from
    /// the feed: rebuilds, retries, repairs): the partition's next subscription starts
    /// after it. Within an epoch it only moves forward.
    pub cursor: Option<FeedCursor>,
    /// How many events the batch took in (applied or skipped as not handled).
    pub events: u64,
    /// The last version seen of every stream the batch touched.
    pub streams: Vec<(StreamId, Seen)>,
    /// Events the batch sent to the dead letters.
    pub dead_letters: Vec<DeadLetter>,
    /// Messages of the batch that were not events of the store, parked.
    pub rogue: Vec<RogueMessage>,
}

/// What a projection has seen of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last version taken in (applied, passed over, or sent to the dead letters).
    pub version: StreamVersion,
    /// Whether the stream is parked behind a poison event.
    pub parked: bool,
}

/// The saved state of one projection partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// The highest log position applied. Every event of the partition at or below it has
    /// been taken in (the feed delivers in log order, and the runner records a batch only
    /// when every message before it in the feed is recorded).
    pub position: LogPosition,
    /// The feed cursor of the last message committed, where the partition's next
    /// subscription starts.
    pub cursor: Option<FeedCursor>,
    /// How many events the partition has taken in.
    pub events: u64,
}

/// A backend for read models, as the worker needs it for every batch: it opens the
/// transaction a batch runs in and keeps the runtime's bookkeeping (partition positions,
/// last seen stream versions) inside that same transaction.
///
/// What a backend may do to make batches cheaper is
/// [`BatchOptimisations`](crate::BatchOptimisations); set-up, rebuilds, dead letters and
/// the operators' queries are [`ReadModelsAdmin`](crate::ReadModelsAdmin). A
/// [`ProjectionRunner`](crate::ProjectionRunner) needs all three; a
/// [`Projection`](crate::Projection) only this one.
///
/// Implemented by `PgReadModels` (in `tidemark-projections-postgres`) and
/// [`MemoryReadModels`](crate::MemoryReadModels).
pub trait ReadModels: Clone + Send + Sync + 'static {
    /// A transaction: changes become visible at [`commit`](Self::commit) and are
    /// discarded when it is dropped.
    type Tx: Send;

    /// Opens a transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    /// Opens a transaction for a batch of `partition` of `projection`. Backends may take
    /// the partition's lock (see [`lock_partition`](Self::lock_partition)) in the same
    /// round trip, waiting for it; the batch's lock call then only reads. By default it
    /// is [`begin`](Self::begin).
    fn begin_batch(&self, projection: &str, partition: u32) -> impl Future<Output = Result<Self::Tx>> + Send {
        let _ = (projection, partition);
        self.begin()
    }

    /// Commits a transaction.
    fn commit(&self, tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;

    /// Whether `error`, returned by a projection's own code, comes from this backend's
    /// database going away (a lost connection, a server shutting down): such a failure is
    /// retried and never counts towards parking the event as poison. By default, when
    /// [`is_connection_loss`](crate::is_connection_loss) says so; a backend adds the
    /// failures its driver reports without an I/O error.
    fn is_unavailable(&self, error: &(dyn std::error::Error + 'static)) -> bool {
        crate::error::is_connection_loss(error)
    }

    /// Locks one projection partition for the rest of the transaction and returns its
    /// saved state. Two transactions locking the same partition run one after the other,
    /// and the second sees what the first committed.
    fn lock_partition(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        partition: u32,
    ) -> impl Future<Output = Result<PartitionState>> + Send;

    /// What the projection has seen of `streams` (absent when never seen).
    fn seen_versions(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        streams: &[StreamId],
    ) -> impl Future<Output = Result<HashMap<StreamId, Seen>>> + Send;

    /// [`lock_partition`](Self::lock_partition), then [`seen_versions`](Self::seen_versions)
    /// read after the lock is held: what a batch starts with. Backends may do both in one
    /// round trip.
    fn lock_and_read_seen(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        partition: u32,
        streams: &[StreamId],
    ) -> impl Future<Output = Result<(PartitionState, HashMap<StreamId, Seen>)>> + Send {
        async move {
            let state = self.lock_partition(tx, projection, partition).await?;
            let seen = self.seen_versions(tx, projection, streams).await?;
            Ok((state, seen))
        }
    }

    /// Records a batch's progress in a locked partition.
    fn record(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        partition: u32,
        progress: &Progress,
    ) -> impl Future<Output = Result<()>> + Send;
}

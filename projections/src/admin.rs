//! The lifecycle and operators' side of a read-model backend.

use std::future::Future;

use tidemark::{StreamId, StreamVersion};

use crate::error::Result;
use crate::letters::{DeadLetter, RogueMessage};
use crate::read_models::{PartitionState, ReadModels, Seen};

/// The lifecycle and the operators' side of a [`ReadModels`] backend: set-up, rebuilds
/// and resets, dead letters and rogue messages, and the queries of status, audit and
/// read-your-writes waits. None of it runs per batch.
pub trait ReadModelsAdmin: ReadModels {
    /// The version whose set-up has run for `projection`, if any (inside a transaction
    /// that serialises concurrent set-ups).
    fn set_up_version(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<Option<u32>>> + Send;

    /// Creates the place where `projection`'s own data lives (on PostgreSQL its schema,
    /// with a `documents` table), before its first set-up.
    fn create_namespace(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<()>> + Send;

    /// Records that `projection` is set up at `version`.
    fn mark_set_up(&self, tx: &mut Self::Tx, projection: &str, version: u32)
        -> impl Future<Output = Result<()>> + Send;

    /// Locks every partition of `projection` for the rest of the transaction: batches of
    /// the live runner wait until it ends.
    fn lock_projection(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<()>> + Send;

    /// Makes `shadow`'s data, seen versions and dead letters those of `live`, set up at
    /// `version`, and drops `live`'s old data: the end of a rebuild, atomic with the
    /// transaction. Partition positions of `live` stay (they follow its consumers).
    fn swap(
        &self,
        tx: &mut Self::Tx,
        live: &str,
        shadow: &str,
        version: u32,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes `projection`'s data and bookkeeping entirely.
    fn drop_projection(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes and returns the parked dead letters of `stream`, by version, and unparks
    /// it (inside a transaction that has locked the stream's partition).
    fn take_parked(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Marks parked rogue messages of `projection` skipped: the one with `key`, or all of
    /// them when `key` is `None`. Returns how many.
    fn skip_rogue(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        key: Option<&str>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Every dead letter of `projection` (parked and skipped), by stream and version.
    fn dead_letters(&self, projection: &str) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Every rogue message recorded for `projection` (parked and skipped), by key.
    fn rogue_messages(&self, projection: &str) -> impl Future<Output = Result<Vec<RogueMessage>>> + Send;

    /// Whether `projection` is paused: its runners take no batches until it is resumed.
    /// Runners read it between batches, at most every half second.
    fn paused(&self, projection: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Pauses (`true`) or resumes (`false`) `projection`; the flag outlives restarts,
    /// rebuilds and resets. Returns whether it changed anything.
    fn set_paused(&self, projection: &str, paused: bool) -> impl Future<Output = Result<bool>> + Send;

    /// The last version of `stream` the projection has seen (0 when none), read outside
    /// any batch: read-your-writes waits poll it.
    fn stream_seen(&self, projection: &str, stream: &StreamId) -> impl Future<Output = Result<StreamVersion>> + Send;

    /// The saved state of every partition of `projection` that has one, by partition.
    fn partitions(&self, projection: &str) -> impl Future<Output = Result<Vec<(u32, PartitionState)>>> + Send;

    /// What `projection` has seen of each stream, by stream id in byte order, for the
    /// streams after `after`, at most `limit`: what an audit compares with the store.
    fn seen_streams(
        &self,
        projection: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(StreamId, Seen)>>> + Send;
}

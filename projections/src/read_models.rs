//! Where read models live: the transaction a batch runs in and the runtime's bookkeeping.

use std::collections::HashMap;
use std::future::Future;

use tidemark::{EventId, LogPosition, StreamId};

use crate::error::{ProjectionError, Result};
use crate::feed::FeedCursor;

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
    pub version: u64,
    /// Whether the stream is parked behind a poison event.
    pub parked: bool,
}

/// How [`ReadModels::commit_if_seen`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckedCommit<T> {
    /// The batch was recorded and its transaction committed.
    Committed,
    /// Some stream was not last seen where the batch expected (or is parked): nothing was
    /// recorded, and here is the transaction, still open, holding the batch's writes.
    Refused(T),
}

/// What happened to a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterStatus {
    /// Waiting for a retry or a skip; later events of the stream wait behind it.
    Parked,
    /// Passed over, by policy or by an operator; kept as a record.
    Skipped,
}

impl DeadLetterStatus {
    /// `parked` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::Skipped => "skipped",
        }
    }
}

/// An event a projection did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its stream.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its id.
    pub event_id: EventId,
    /// Its stored type name.
    pub event_type: String,
    /// Its log position.
    pub position: LogPosition,
    /// Parked or skipped.
    pub status: DeadLetterStatus,
    /// Why: the projection's error, or the poison event it is parked behind.
    pub error: String,
}

/// A message on the broker that is not an event of the store (headers missing or
/// invalid, a payload that is not JSON, a stream of another partition, a subject or
/// headers that disagree with the stored event, or no such event at all). It never
/// touches a stream's progress; it is parked with its reason until an operator skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RogueMessage {
    /// What identifies the message in the record: `seq <N>` (its sequence in the
    /// JetStream stream) or, when the broker gives none, `event <claimed event id>`.
    /// A redelivered message updates its record instead of adding one.
    pub key: String,
    /// The partition it was delivered on.
    pub partition: u32,
    /// Its subject (empty when not known).
    pub subject: String,
    /// The stream id its headers claim, when they name a valid one.
    pub stream_id: Option<StreamId>,
    /// The stream version its headers claim, when they are readable.
    pub stream_version: Option<u64>,
    /// The event id its headers claim, when they are readable.
    pub event_id: Option<EventId>,
    /// Why it was rejected.
    pub reason: String,
    /// Parked (waiting for an operator) or skipped (cleared by `dlq skip --rogue`).
    pub status: DeadLetterStatus,
}

impl RogueMessage {
    /// A parked rogue message with nothing claimed yet.
    pub fn new(key: impl Into<String>, partition: u32, subject: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            partition,
            subject: subject.into(),
            stream_id: None,
            stream_version: None,
            event_id: None,
            reason: reason.into(),
            status: DeadLetterStatus::Parked,
        }
    }

    /// Records what the message's headers claim.
    pub fn claiming(mut self, stream_id: StreamId, stream_version: u64, event_id: EventId) -> Self {
        self.stream_id = Some(stream_id);
        self.stream_version = Some(stream_version);
        self.event_id = Some(event_id);
        self
    }
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

/// A backend for read models: it opens the transaction every batch runs in and keeps the
/// runtime's bookkeeping (partition positions, last seen stream versions, set-up versions)
/// inside that same transaction.
///
/// Implemented by [`PgReadModels`](crate::PgReadModels) and
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

    /// Whether the runner should begin a partition's next batch transaction while it
    /// waits for that batch, taking the round trip of [`begin_batch`](Self::begin_batch)
    /// out of the batch's latency. Such a transaction holds a connection and the batch's
    /// locks while it waits, for a short time at most: the runner commits it unused when
    /// no batch comes. By default false; PostgreSQL says true while its pool has a
    /// connection to spare.
    fn begins_early(&self) -> bool {
        false
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

    /// Removes and returns the parked dead letters of `stream`, by version, and unparks
    /// it (inside a transaction that has locked the stream's partition).
    fn take_parked(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Every dead letter of `projection` (parked and skipped), by stream and version.
    fn dead_letters(&self, projection: &str) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Every rogue message recorded for `projection` (parked and skipped), by key.
    fn rogue_messages(&self, projection: &str) -> impl Future<Output = Result<Vec<RogueMessage>>> + Send;

    /// Marks parked rogue messages of `projection` skipped: the one with `key`, or all of
    /// them when `key` is `None`. Returns how many.
    fn skip_rogue(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        key: Option<&str>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Records a batch's progress in a locked partition.
    fn record(
        &self,
        tx: &mut Self::Tx,
        projection: &str,
        partition: u32,
        progress: &Progress,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether a transaction from [`begin_batch`](Self::begin_batch) holds the batch's
    /// locks already and marks a point [`undo_batch`](Self::undo_batch) returns to. Then
    /// the runner may apply a batch before reading which of its events were seen, and
    /// check that when it records the batch with [`record_if_seen`](Self::record_if_seen).
    /// By default false: every batch is checked first.
    fn undoes_batches(&self) -> bool {
        false
    }

    /// Records a batch's progress, as [`record`](Self::record) does, only if every stream
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
        expected: &[u64],
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

    /// [`record_if_seen`](Self::record_if_seen), then [`commit`](Self::commit) when it
    /// recorded: backends may do both in one round trip, and so hold the transaction's
    /// writes for one round trip less. When it did not record, the transaction comes back
    /// as it was, for [`undo_batch`](Self::undo_batch). By default the two calls, in turn.
    fn commit_if_seen(
        &self,
        tx: Self::Tx,
        projection: &str,
        partition: u32,
        progress: &Progress,
        expected: &[u64],
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

    /// Removes every write of a transaction from [`begin_batch`](Self::begin_batch) made
    /// since it began, keeping its locks: the batch can then be applied again. Only called
    /// when [`undoes_batches`](Self::undoes_batches) is true; by default it fails.
    fn undo_batch(&self, tx: &mut Self::Tx) -> impl Future<Output = Result<()>> + Send {
        let _ = tx;
        async { Err(ProjectionError::Config("this read-model backend cannot undo a batch")) }
    }

    /// The version whose set-up has run for `projection`, if any (inside a transaction
    /// that serialises concurrent set-ups).
    fn set_up_version(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<Option<u32>>> + Send;

    /// Creates the place where `projection`'s own data lives (on PostgreSQL its schema,
    /// with a `documents` table), before its first set-up.
    fn create_namespace(&self, tx: &mut Self::Tx, projection: &str) -> impl Future<Output = Result<()>> + Send;

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

    /// Records that `projection` is set up at `version`.
    fn mark_set_up(&self, tx: &mut Self::Tx, projection: &str, version: u32)
        -> impl Future<Output = Result<()>> + Send;

    /// The last version of `stream` the projection has seen (0 when none), read outside
    /// any batch: read-your-writes waits poll it.
    fn stream_seen(&self, projection: &str, stream: &StreamId) -> impl Future<Output = Result<u64>> + Send;

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

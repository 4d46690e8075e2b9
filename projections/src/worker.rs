//! Applying one batch: one transaction that locks the partition, skips what was seen,
//! repairs gaps from the store, applies, records progress and commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tidemark::{Envelope, EventStore, LogPosition, RecordedEvent, StreamId, StreamVersion};

use crate::config::PoisonPolicy;
use crate::error::{ProjectionError, Result};
use crate::feed::{FeedCursor, Incoming};
use crate::metrics;
use crate::partition::error_chain;
use crate::projection::Projection;
use crate::read_models::{CheckedCommit, DeadLetter, DeadLetterStatus, Progress, ReadModels, RogueMessage, Seen};
use crate::resolve::Resolved;

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

/// A batch checked against the store, ready for its transaction.
#[derive(Debug)]
pub(crate) struct Prepared {
    resolved: Resolved,
    report: BatchReport,
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

/// How a batch applied before its check ended.
enum Speculation<T> {
    /// Checked, recorded and committed.
    Committed(BatchReport),
    /// The check refused it; the transaction holds its writes, to undo.
    Refused(T),
    /// The projection failed on one of its events; the transaction holds the writes
    /// before, to undo.
    Failed(T),
}

/// How many batches after an undone one are checked first.
const CAREFUL_AFTER_UNDO: u32 = 16;

/// The largest batch applied before its check. Applying first saves one round trip per
/// batch, which matters to small batches (a lone event's latency) and hardly to large
/// ones, while undoing a batch costs in proportion to its size.
const APPLY_FIRST_UP_TO: usize = 64;

impl<P, R: Clone, S> Worker<P, R, S> {
    /// The same projection, working under another name (a rebuild's shadow).
    pub fn renamed(&self, name: String) -> Self {
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
    /// Runs the projection's set-up if this version has not been set up yet.
    pub async fn ensure_set_up(&self) -> Result<()> {
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

    /// Applies a batch of one partition in one transaction. The batch is checked against
    /// the store while the transaction begins, before it locks anything, so the lock is
    /// held no longer than the read-model work.
    ///
    /// `cursor` is the feed cursor of the batch's last message, recorded with it (none
    /// for events that did not come from the feed).
    pub async fn apply_batch(
        &self,
        partition: u32,
        batch: &[Incoming],
        cursor: Option<FeedCursor>,
    ) -> Result<BatchReport> {
        let (prepared, tx) =
            tokio::join!(self.prepare(partition, batch), self.read_models.begin_batch(&self.name, partition));
        self.apply_and_commit(tx?, partition, batch, cursor, prepared?).await
    }

    /// Begins the transaction of `partition`'s next batch before the batch has come (see
    /// [`ReadModels::begins_early`]); [`apply_begun`](Self::apply_begun) uses it and
    /// [`release`](Self::release) ends it unused.
    pub(crate) async fn begin_early(&self, partition: u32) -> Result<R::Tx> {
        self.read_models.begin_batch(&self.name, partition).await
    }

    /// Applies a batch in a transaction from [`begin_early`](Self::begin_early).
    pub(crate) async fn apply_begun(
        &self,
        tx: R::Tx,
        partition: u32,
        batch: &[Incoming],
        cursor: Option<FeedCursor>,
    ) -> Result<BatchReport> {
        let prepared = match self.prepare(partition, batch).await {
            Ok(prepared) => prepared,
            Err(e) => {
                // Nothing was written: the transaction ends cleanly, keeping its connection.
                let _ = self.read_models.commit(tx).await;
                return Err(e);
            }
        };
        self.apply_and_commit(tx, partition, batch, cursor, prepared).await
    }

    /// Ends a transaction from [`begin_early`](Self::begin_early) that no batch used.
    pub(crate) async fn release(&self, tx: R::Tx) -> Result<()> {
        self.read_models.commit(tx).await
    }

    /// Moves `partition`'s recorded position up to `position` (never down), in a
    /// transaction of its own that takes the partition's lock: every event of the
    /// partition up to `position` must have been taken in.
    pub(crate) async fn raise_position(&self, partition: u32, position: LogPosition) -> Result<()> {
        let mut tx = self.read_models.begin_batch(&self.name, partition).await?;
        let progress = Progress { position, ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await
    }

    /// The feed cursor recorded with `partition`'s last committed batch.
    pub(crate) async fn cursor(&self, partition: u32) -> Result<Option<FeedCursor>> {
        let partitions = self.read_models.partitions(&self.name).await?;
        Ok(partitions.into_iter().find(|(p, _)| *p == partition).and_then(|(_, state)| state.cursor))
    }

    /// Whether to begin batches early (see [`ReadModels::begins_early`]).
    pub(crate) fn begins_early(&self) -> bool {
        self.read_models.begins_early()
    }

    /// Checks a batch against the store (and reads what it refers to) before its
    /// transaction: what [`apply_prepared`](Self::apply_prepared) needs. Touches no read
    /// model, so it may run while the batch before it is applied.
    pub async fn prepare(&self, partition: u32, batch: &[Incoming]) -> Result<Prepared> {
        let mut report = BatchReport::default();
        let resolved = self.resolve(partition, batch, &mut report).await?;
        Ok(Prepared { resolved, report })
    }

    /// Applies a batch prepared by [`prepare`](Self::prepare) in one transaction.
    pub async fn apply_prepared(
        &self,
        partition: u32,
        batch: &[Incoming],
        cursor: Option<FeedCursor>,
        prepared: Prepared,
    ) -> Result<BatchReport> {
        let tx = self.read_models.begin_batch(&self.name, partition).await?;
        self.apply_and_commit(tx, partition, batch, cursor, prepared).await
    }

    /// Applies a batch of one partition inside `tx`, which it locks the partition in.
    pub async fn apply_in(&self, tx: &mut R::Tx, partition: u32, batch: &[Incoming]) -> Result<BatchReport> {
        let Prepared { mut resolved, report } = self.prepare(partition, batch).await?;
        let rogue = std::mem::take(&mut resolved.rogue);
        self.apply_checked(tx, partition, &resolved.events(batch), None, rogue, report).await
    }

    /// Applies a prepared batch in `tx`, fresh from `begin_batch`, and commits it. When the
    /// backend can undo it and the projection allows it, the batch is first applied as if
    /// it were the next versions of its streams, and checked as it is recorded and
    /// committed; if the check refuses it (or the projection fails on one of its events),
    /// it is undone and taken again by [`apply_checked`](Self::apply_checked).
    async fn apply_and_commit(
        &self,
        mut tx: R::Tx,
        partition: u32,
        batch: &[Incoming],
        cursor: Option<FeedCursor>,
        prepared: Prepared,
    ) -> Result<BatchReport> {
        let Prepared { mut resolved, mut report } = prepared;
        let rogue = std::mem::take(&mut resolved.rogue);
        let events = resolved.events(batch);
        if rogue.is_empty() && events.len() <= APPLY_FIRST_UP_TO && self.may_speculate() {
            if let Some(expected) = next_versions(&events) {
                // Refused: a redelivery, a gap, a parked stream. Failed: the projection
                // failed on an event (which may be one it has seen). Either way the batch
                // is undone and taken again with the check first, which says what it is.
                let refused = match self.speculate(tx, partition, &events, cursor, expected, report).await? {
                    Speculation::Committed(report) => {
                        metrics::speculation(&self.name, "kept");
                        return Ok(report);
                    }
                    Speculation::Refused(back) => {
                        tx = back;
                        true
                    }
                    Speculation::Failed(back) => {
                        tx = back;
                        false
                    }
                };
                metrics::speculation(&self.name, "undone");
                tracing::debug!(projection = %self.name, partition, refused,
                    "undid a batch applied before its check; applying it again with the check first");
                self.careful.store(CAREFUL_AFTER_UNDO, Ordering::Relaxed);
                self.read_models.undo_batch(&mut tx).await?;
                report.undone += 1;
            }
        }
        let report = self.apply_checked(&mut tx, partition, &events, cursor, rogue, report).await?;
        self.read_models.commit(tx).await?;
        Ok(report)
    }

    /// Applies resolved events inside `tx` with the check first: the partition is locked
    /// and read, what was seen is skipped, gaps are repaired, and the rest applied and
    /// recorded.
    async fn apply_checked(
        &self,
        tx: &mut R::Tx,
        partition: u32,
        events: &[&RecordedEvent],
        cursor: Option<FeedCursor>,
        rogue: Vec<RogueMessage>,
        mut report: BatchReport,
    ) -> Result<BatchReport> {
        let mut distinct: Vec<&StreamId> = events.iter().map(|e| &e.stream_id).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let streams: Vec<StreamId> = distinct.into_iter().cloned().collect();
        let (state, mut seen) = self.read_models.lock_and_read_seen(tx, &self.name, partition, &streams).await?;
        let mut touched: HashMap<StreamId, Seen> = HashMap::new();
        let mut dead_letters = Vec::new();
        let mut position = state.position;
        let mut handled = Vec::with_capacity(events.len());
        for event in events {
            let last = seen.get(&event.stream_id).copied().unwrap_or_default();
            let version = event.stream_version.0;
            if version <= last.version {
                report.duplicates += 1;
                continue;
            }
            if last.parked {
                // Versions between the last one seen and this one (their messages went to
                // another instance, or come again later) park with it: once this version is
                // seen, they would be passed over as duplicates.
                let from = StreamVersion(last.version + 1);
                let missing = usize::try_from(version - from.0).unwrap_or(usize::MAX);
                let lost = if missing > 0 {
                    self.store.read_stream(&event.stream_id, from, missing).await?
                } else {
                    Vec::new()
                };
                for earlier in lost.iter().take_while(|e| e.stream_version.0 < version) {
                    let error = "parked behind an earlier event of its stream".to_owned();
                    dead_letters.push(dead_letter(earlier, DeadLetterStatus::Parked, error));
                    report.dead_lettered += 1;
                }
                let error = "parked behind an earlier event of its stream".to_owned();
                dead_letters.push(dead_letter(event, DeadLetterStatus::Parked, error));
                report.dead_lettered += 1;
            } else {
                if version > last.version + 1 {
                    let repaired = self.repair(&event.stream_id, last.version, version, &mut handled, &mut report);
                    report.repaired += repaired.await?;
                }
                self.decode_into(event, &mut handled, &mut report)?;
            }
            let now = Seen { version, parked: last.parked };
            remember(&mut seen, &event.stream_id, now);
            remember(&mut touched, &event.stream_id, now);
            position = position.max(event.position);
        }
        self.apply_handled(tx, &handled).await?;
        let taken = report.applied + report.skipped + report.dead_lettered;
        let streams = touched.into_iter().collect();
        let progress = Progress { position, cursor, events: taken, streams, dead_letters, rogue };
        self.read_models.record(tx, &self.name, partition, &progress).await?;
        Ok(report)
    }

    /// Whether the next batch may be applied before it is checked: the backend can undo
    /// it, the projection allows it, and no batch was undone just before.
    fn may_speculate(&self) -> bool {
        if !self.read_models.undoes_batches() || !self.projection.undoable() {
            return false;
        }
        let careful = self.careful.load(Ordering::Relaxed);
        if careful == 0 {
            return true;
        }
        self.careful.store(careful - 1, Ordering::Relaxed);
        false
    }

    /// Applies `events` as the next versions of their streams, `expected` giving each
    /// stream's first version less one, then records and commits them if the streams were
    /// indeed last seen there. When they were not, or the projection failed on an event,
    /// `tx` comes back holding writes to undo.
    async fn speculate(
        &self,
        mut tx: R::Tx,
        partition: u32,
        events: &[&RecordedEvent],
        cursor: Option<FeedCursor>,
        expected: Vec<(StreamId, u64, u64)>,
        mut report: BatchReport,
    ) -> Result<Speculation<R::Tx>> {
        let mut handled = Vec::with_capacity(events.len());
        let applied = async {
            for event in events {
                self.decode_into(event, &mut handled, &mut report)?;
            }
            self.apply_handled(&mut tx, &handled).await
        }
        .await;
        match applied {
            Ok(()) => {}
            Err(ProjectionError::Apply { .. }) => return Ok(Speculation::Failed(tx)),
            Err(other) => return Err(other),
        }
        let position = events.iter().map(|e| e.position).max().unwrap_or_default();
        let (streams, before): (Vec<_>, Vec<_>) = expected
            .into_iter()
            .map(|(stream, before, last)| ((stream, Seen { version: last, parked: false }), before))
            .unzip();
        let events = report.applied + report.skipped;
        let progress = Progress { position, cursor, events, streams, ..Progress::default() };
        match self.read_models.commit_if_seen(tx, &self.name, partition, &progress, &before).await? {
            CheckedCommit::Committed => Ok(Speculation::Committed(report)),
            CheckedCommit::Refused(tx) => Ok(Speculation::Refused(tx)),
        }
    }

    /// Applies a failing batch one message at a time, each in its own transaction; a
    /// message the projection fails on goes to the dead letters (parked or skipped, by
    /// `policy`, which is not `Halt`). `cursors` gives each message's feed cursor (empty
    /// for events that did not come from the feed), recorded as it commits.
    pub async fn isolated(
        &self,
        partition: u32,
        batch: &[Incoming],
        cursors: &[FeedCursor],
        policy: PoisonPolicy,
    ) -> Result<BatchReport> {
        let status = match policy {
            PoisonPolicy::Skip => DeadLetterStatus::Skipped,
            _ => DeadLetterStatus::Parked,
        };
        let mut total = BatchReport::default();
        for (i, message) in batch.iter().enumerate() {
            let cursor = cursors.get(i).copied();
            let report = match self.apply_batch(partition, std::slice::from_ref(message), cursor).await {
                Err(ProjectionError::Apply { .. }) => {
                    // Alone, the message may still bring earlier versions of its stream, read
                    // from the store to fill a gap (their messages went to another instance,
                    // or are still on their way): nothing says those are poison. They go in
                    // one by one first; then the message is tried alone once more.
                    let mut report = self.apply_gap_alone(partition, message, status).await?;
                    report.add(match self.apply_batch(partition, std::slice::from_ref(message), cursor).await {
                        Err(e @ ProjectionError::Apply { .. }) => {
                            self.dead_letter(partition, message, cursor, &error_chain(&e), status).await?
                        }
                        other => other?,
                    });
                    report
                }
                other => other?,
            };
            total.add(report);
        }
        Ok(total)
    }

    /// Applies the versions of the message's stream between the last one taken in and the
    /// message's own, read from the store, each in its own transaction; one the projection
    /// fails on goes to the dead letters (and parks the stream, so the rest park behind it).
    async fn apply_gap_alone(
        &self,
        partition: u32,
        message: &Incoming,
        status: DeadLetterStatus,
    ) -> Result<BatchReport> {
        let (stream, version) = match message {
            Incoming::Event(event) | Incoming::Stored(event) => (&event.stream_id, event.stream_version.0),
            Incoming::Reference { stream_id, stream_version, .. } => (stream_id, stream_version.0),
            Incoming::Copy { .. } | Incoming::Rogue { .. } => return Ok(BatchReport::default()),
        };
        let mut tx = self.read_models.begin().await?;
        let seen = self.read_models.seen_versions(&mut tx, &self.name, std::slice::from_ref(stream)).await?;
        self.read_models.commit(tx).await?;
        let last = seen.get(stream).copied().unwrap_or_default();
        if last.parked || version <= last.version + 1 {
            return Ok(BatchReport::default());
        }
        let missing = usize::try_from(version - last.version - 1).unwrap_or(usize::MAX);
        let mut total = BatchReport::default();
        for event in self.store.read_stream(stream, StreamVersion(last.version + 1), missing).await? {
            let one = Incoming::Stored(event);
            total.add(match self.apply_batch(partition, std::slice::from_ref(&one), None).await {
                Err(e @ ProjectionError::Apply { .. }) => {
                    self.dead_letter(partition, &one, None, &error_chain(&e), status).await?
                }
                other => other?,
            });
        }
        Ok(total)
    }

    /// Sends one message's event to the dead letters (after its batch failed on it again
    /// and again): parked, with its stream, or skipped. Versions the broker lost just
    /// before it go with it. `cursor` is the message's feed cursor, recorded with it.
    pub async fn dead_letter(
        &self,
        partition: u32,
        message: &Incoming,
        cursor: Option<FeedCursor>,
        error: &str,
        status: DeadLetterStatus,
    ) -> Result<BatchReport> {
        let mut report = BatchReport::default();
        let mut tx = self.read_models.begin().await?;
        let state = self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        let batch = std::slice::from_ref(message);
        let mut resolved = self.resolve(partition, batch, &mut report).await?;
        let rogue = std::mem::take(&mut resolved.rogue);
        let Some(event) = resolved.events(batch).pop() else {
            let progress = Progress { position: state.position, cursor, rogue, ..Progress::default() };
            self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
            self.read_models.commit(tx).await?;
            return Ok(report);
        };
        let stream = std::slice::from_ref(&event.stream_id);
        let last = self.read_models.seen_versions(&mut tx, &self.name, stream).await?.remove(&event.stream_id);
        let last = last.unwrap_or_default();
        if event.stream_version.0 <= last.version {
            report.duplicates += 1;
            let progress = Progress { position: state.position, cursor, ..Progress::default() };
            self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
            self.read_models.commit(tx).await?;
            return Ok(report);
        }
        let mut letters = Vec::new();
        let from = StreamVersion(last.version + 1);
        let missing = (event.stream_version.0 - from.0) as usize;
        for lost in self.store.read_stream(&event.stream_id, from, missing).await? {
            let why = format!("parked with the poison event {} that follows it", event.event_id);
            letters.push(dead_letter(&lost, status, why));
        }
        letters.push(dead_letter(event, status, error.to_owned()));
        tracing::error!(projection = %self.name, event_id = %event.event_id, stream = %event.stream_id,
            status = status.as_str(), %error, "sent a poison event to the dead letters");
        report.dead_lettered = letters.len() as u64;
        let parked = status == DeadLetterStatus::Parked || last.parked;
        let seen = Seen { version: event.stream_version.0, parked };
        let position = state.position.max(event.position);
        let progress = Progress {
            position,
            cursor,
            events: report.dead_lettered,
            streams: vec![(event.stream_id.clone(), seen)],
            dead_letters: letters,
            rogue,
        };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await?;
        Ok(report)
    }

    /// Applies the parked events of `stream` again, in order, and unparks it; on failure
    /// nothing changes. Returns how many events were applied.
    pub async fn retry_parked(&self, partition: u32, stream: &StreamId) -> Result<u64> {
        let mut tx = self.read_models.begin().await?;
        let state = self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        let letters = self.read_models.take_parked(&mut tx, &self.name, stream).await?;
        let (Some(first), Some(last)) = (letters.first(), letters.last()) else {
            self.read_models.commit(tx).await?;
            return Ok(0);
        };
        let count = usize::try_from(last.stream_version - first.stream_version + 1).unwrap_or(usize::MAX);
        let events = self.store.read_stream(stream, StreamVersion(first.stream_version), count).await?;
        let mut report = BatchReport::default();
        let mut handled = Vec::new();
        for event in &events {
            self.decode_into(event, &mut handled, &mut report)?;
        }
        self.apply_handled(&mut tx, &handled).await?;
        let seen = Seen { version: last.stream_version, parked: false };
        let progress =
            Progress { position: state.position, streams: vec![(stream.clone(), seen)], ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await?;
        Ok(report.applied)
    }

    /// Rebuilds one stream: the projection forgets it, then takes in every event of it
    /// from the store, in one transaction with the partition locked. Its dead letters go.
    pub async fn rebuild_stream(&self, partition: u32, stream: &StreamId) -> Result<BatchReport> {
        let mut tx = self.read_models.begin().await?;
        let state = self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        self.read_models.take_parked(&mut tx, &self.name, stream).await?;
        let forgot = self.projection.forget_stream(&mut tx, stream).await;
        forgot.map_err(|source| ProjectionError::Forget {
            projection: self.name.clone(),
            stream: stream.to_string(),
            source,
        })?;
        let events = tidemark::read_stream_to_end(&*self.store, stream, StreamVersion(1), 1_000).await?;
        let mut report = BatchReport::default();
        let mut handled = Vec::with_capacity(events.len());
        for event in &events {
            self.decode_into(event, &mut handled, &mut report)?;
        }
        self.apply_handled(&mut tx, &handled).await?;
        let version = events.last().map_or(0, |e| e.stream_version.0);
        let seen = Seen { version, parked: false };
        let progress =
            Progress { position: state.position, streams: vec![(stream.clone(), seen)], ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await?;
        Ok(report)
    }

    /// Marks the parked events of `stream` skipped and unparks it. Returns how many.
    pub async fn skip_parked(&self, partition: u32, stream: &StreamId) -> Result<u64> {
        let mut tx = self.read_models.begin().await?;
        let state = self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        let mut letters = self.read_models.take_parked(&mut tx, &self.name, stream).await?;
        let Some(last) = letters.last().map(|l| l.stream_version) else {
            self.read_models.commit(tx).await?;
            return Ok(0);
        };
        for letter in &mut letters {
            letter.status = DeadLetterStatus::Skipped;
        }
        let skipped = letters.len() as u64;
        let seen = Seen { version: last, parked: false };
        let streams = vec![(stream.clone(), seen)];
        let progress = Progress { position: state.position, streams, dead_letters: letters, ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await?;
        Ok(skipped)
    }

    /// Applies the versions between `last` and `before` (both exclusive) from the store.
    async fn repair(
        &self,
        stream: &StreamId,
        last: u64,
        before: u64,
        handled: &mut Vec<Envelope<P::Event>>,
        report: &mut BatchReport,
    ) -> Result<u64> {
        tracing::info!(projection = %self.name, %stream, from = last + 1, to = before - 1, "repairing a gap from the store");
        let mut next = last + 1;
        while next < before {
            let limit = usize::try_from(before - next).unwrap_or(usize::MAX).min(500);
            let page = self.store.read_stream(stream, StreamVersion(next), limit).await?;
            if page.is_empty() {
                break;
            }
            for event in page.iter().take_while(|e| e.stream_version.0 < before) {
                self.decode_into(event, handled, report)?;
                next = event.stream_version.0 + 1;
            }
        }
        Ok(next - (last + 1))
    }

    /// Decodes (upcasts) an event the projection handles; counts one it does not.
    fn decode_into(
        &self,
        event: &RecordedEvent,
        handled: &mut Vec<Envelope<P::Event>>,
        report: &mut BatchReport,
    ) -> Result<()> {
        let codec = self.projection.codec();
        if !codec.handles(&event.event_type) {
            report.skipped += 1;
            return Ok(());
        }
        let envelope = codec.decode(event).map_err(|e| ProjectionError::Apply {
            projection: self.name.clone(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            position: event.position,
            source: Box::new(e),
        })?;
        handled.push(envelope);
        report.applied += 1;
        Ok(())
    }

    /// Hands the decoded events to the projection in one call. A failure names the
    /// batch's first event.
    async fn apply_handled(&self, tx: &mut R::Tx, handled: &[Envelope<P::Event>]) -> Result<()> {
        let Some(first) = handled.first() else { return Ok(()) };
        self.projection.apply_batch(tx, handled).await.map_err(|source| {
            if self.read_models.is_unavailable(source.as_ref()) {
                return ProjectionError::ApplyUnavailable { projection: self.name.clone(), source };
            }
            ProjectionError::Apply {
                projection: self.name.clone(),
                event_id: first.event_id,
                event_type: tidemark::DomainEvent::event_type(&first.event).to_owned(),
                position: first.position,
                source,
            }
        })
    }
}

/// For a batch whose events follow each other in every stream (each stream's versions
/// rising by one, in the batch's order), each stream with its first version less one and
/// its last; `None` for an empty batch or one that does not.
fn next_versions(events: &[&RecordedEvent]) -> Option<Vec<(StreamId, u64, u64)>> {
    if events.is_empty() {
        return None;
    }
    let mut streams: Vec<(StreamId, u64, u64)> = Vec::new();
    let mut index: HashMap<&StreamId, usize> = HashMap::new();
    for event in events {
        let version = event.stream_version.0;
        match index.get(&event.stream_id) {
            Some(&i) => {
                let last = &mut streams[i].2;
                if version != *last + 1 {
                    return None;
                }
                *last = version;
            }
            None => {
                index.insert(&event.stream_id, streams.len());
                streams.push((event.stream_id.clone(), version.checked_sub(1)?, version));
            }
        }
    }
    Some(streams)
}

/// Sets what was seen of `stream`, cloning its id only the first time.
fn remember(seen: &mut HashMap<StreamId, Seen>, stream: &StreamId, now: Seen) {
    match seen.get_mut(stream) {
        Some(slot) => *slot = now,
        None => {
            seen.insert(stream.clone(), now);
        }
    }
}

fn dead_letter(event: &RecordedEvent, status: DeadLetterStatus, error: String) -> DeadLetter {
    DeadLetter {
        stream_id: event.stream_id.clone(),
        stream_version: event.stream_version.0,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        position: event.position,
        status,
        error,
    }
}

//! Applying a batch before its check: as if it were the next versions of its streams,
//! checked as it is recorded and committed, and undone when the check refuses it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tidemark::{EventStore, RecordedEvent, StreamId, StreamVersion};

use super::{BatchReport, Worker};
use crate::error::{ProjectionError, Result};
use crate::feed::FeedCursor;
use crate::metrics;
use crate::optimisations::{BatchOptimisations, CheckedCommit};
use crate::projection::Projection;
use crate::read_models::{Progress, Seen};

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

/// What [`Worker::apply_first`] gives back: the report of a batch it committed, or the
/// transaction (with nothing of the batch in it) and the report so far.
type AppliedFirst<T> = std::result::Result<BatchReport, (T, BatchReport)>;

impl<P, R, S> Worker<P, R, S>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Applies `events` before their check, when the backend can undo them, the
    /// projection allows it, the batch is small and its versions follow each other, and
    /// no batch was undone just before. If the check refuses the batch (a redelivery, a
    /// gap, a parked stream) or the projection fails on one of its events (which may be
    /// one it has seen), the batch is undone, to be taken again with the check first,
    /// which says what it is.
    pub(super) async fn apply_first(
        &self,
        mut tx: R::Tx,
        partition: u32,
        events: &[&RecordedEvent],
        cursor: Option<FeedCursor>,
        mut report: BatchReport,
    ) -> Result<AppliedFirst<R::Tx>> {
        if events.len() > APPLY_FIRST_UP_TO || !self.may_speculate() {
            return Ok(Err((tx, report)));
        }
        let Some(expected) = next_versions(events) else { return Ok(Err((tx, report))) };
        let refused = match self.speculate(tx, partition, events, cursor, expected, report).await? {
            Speculation::Committed(report) => {
                metrics::speculation(&self.name, "kept");
                return Ok(Ok(report));
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
        Ok(Err((tx, report)))
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
        expected: Vec<(StreamId, StreamVersion, StreamVersion)>,
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
}

/// For a batch whose events follow each other in every stream (each stream's versions
/// rising by one, in the batch's order), each stream with its first version less one and
/// its last; `None` for an empty batch or one that does not.
fn next_versions(events: &[&RecordedEvent]) -> Option<Vec<(StreamId, StreamVersion, StreamVersion)>> {
    if events.is_empty() {
        return None;
    }
    let mut streams: Vec<(StreamId, StreamVersion, StreamVersion)> = Vec::new();
    let mut index: HashMap<&StreamId, usize> = HashMap::new();
    for event in events {
        let version = event.stream_version;
        match index.get(&event.stream_id) {
            Some(&i) => {
                let last = &mut streams[i].2;
                if version != last.next() {
                    return None;
                }
                *last = version;
            }
            None => {
                index.insert(&event.stream_id, streams.len());
                streams.push((event.stream_id.clone(), StreamVersion(version.0.checked_sub(1)?), version));
            }
        }
    }
    Some(streams)
}

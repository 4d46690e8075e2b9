//! Applying a batch with the check first: the partition is locked and read, what was seen
//! is skipped, gaps are repaired from the store, and the rest applied and recorded.

use std::collections::HashMap;

use tidemark::{Envelope, EventStore, RecordedEvent, StreamId, StreamVersion};

use super::{BatchReport, Worker};
use crate::error::{ProjectionError, Result};
use crate::feed::FeedCursor;
use crate::letters::{DeadLetter, DeadLetterStatus, RogueMessage};
use crate::projection::Projection;
use crate::read_models::{Progress, ReadModels, Seen};

impl<P, R, S> Worker<P, R, S>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Applies resolved events inside `tx` with the check first: the partition is locked
    /// and read, what was seen is skipped, gaps are repaired, and the rest applied and
    /// recorded.
    pub(super) async fn apply_checked(
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
            let version = event.stream_version;
            if version <= last.version {
                report.duplicates += 1;
                continue;
            }
            if last.parked {
                let parked = self.park_behind(event, last.version).await?;
                report.dead_lettered += parked.len() as u64;
                dead_letters.extend(parked);
            } else {
                if version > last.version.next() {
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

    /// The dead letters of an event of a parked stream last seen at `last`: the event,
    /// and the versions between (their messages went to another instance, or come again
    /// later), which park with it: once its version is seen, they would be passed over as
    /// duplicates.
    async fn park_behind(&self, event: &RecordedEvent, last: StreamVersion) -> Result<Vec<DeadLetter>> {
        let version = event.stream_version;
        let from = last.next();
        let missing = usize::try_from(version.0 - from.0).unwrap_or(usize::MAX);
        let lost =
            if missing > 0 { self.store.read_stream(&event.stream_id, from, missing).await? } else { Vec::new() };
        let earlier = lost.iter().take_while(|e| e.stream_version < version);
        let why = || "parked behind an earlier event of its stream".to_owned();
        Ok(earlier.chain([event]).map(|e| dead_letter(e, DeadLetterStatus::Parked, why())).collect())
    }

    /// Applies the versions between `last` and `before` (both exclusive) from the store.
    pub(super) async fn repair(
        &self,
        stream: &StreamId,
        last: StreamVersion,
        before: StreamVersion,
        handled: &mut Vec<Envelope<P::Event>>,
        report: &mut BatchReport,
    ) -> Result<u64> {
        let (last, before) = (last.0, before.0);
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
    pub(crate) fn decode_into(
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
    pub(crate) async fn apply_handled(&self, tx: &mut R::Tx, handled: &[Envelope<P::Event>]) -> Result<()> {
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

/// Sets what was seen of `stream`, cloning its id only the first time.
fn remember(seen: &mut HashMap<StreamId, Seen>, stream: &StreamId, now: Seen) {
    match seen.get_mut(stream) {
        Some(slot) => *slot = now,
        None => {
            seen.insert(stream.clone(), now);
        }
    }
}

pub(super) fn dead_letter(event: &RecordedEvent, status: DeadLetterStatus, error: String) -> DeadLetter {
    DeadLetter {
        stream_id: event.stream_id.clone(),
        stream_version: event.stream_version,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        position: event.position,
        status,
        error,
    }
}

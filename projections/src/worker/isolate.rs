//! A batch that keeps failing, taken one message at a time: a message the projection
//! fails on alone goes to the dead letters.

use tidemark::EventStore;

use super::checked::dead_letter;
use super::{BatchReport, Worker};
use crate::config::PoisonPolicy;
use crate::error::{ProjectionError, Result};
use crate::feed::{FeedCursor, Incoming};
use crate::letters::DeadLetterStatus;
use crate::optimisations::BatchOptimisations;
use crate::partition::error_chain;
use crate::projection::Projection;
use crate::read_models::{Progress, Seen};

impl<P, R, S> Worker<P, R, S>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Applies a failing batch one message at a time, each in its own transaction; a
    /// message the projection fails on goes to the dead letters (parked or skipped, by
    /// `policy`, which is not `Halt`). `cursors` gives each message's feed cursor (empty
    /// for events that did not come from the feed), recorded as it commits.
    pub(crate) async fn apply_one_by_one(
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
            let report = match self.apply_and_commit(partition, std::slice::from_ref(message), cursor).await {
                Err(ProjectionError::Apply { .. }) => {
                    // Alone, the message may still bring earlier versions of its stream, read
                    // from the store to fill a gap (their messages went to another instance,
                    // or are still on their way): nothing says those are poison. They go in
                    // one by one first; then the message is tried alone once more.
                    let mut report = self.apply_gap_alone(partition, message, status).await?;
                    report.add(match self.apply_and_commit(partition, std::slice::from_ref(message), cursor).await {
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
            Incoming::Untrusted(event) | Incoming::Trusted(event) => (&event.stream_id, event.stream_version),
            Incoming::Reference { stream_id, stream_version, .. } => (stream_id, *stream_version),
            Incoming::Copy { .. } | Incoming::Rogue { .. } => return Ok(BatchReport::default()),
        };
        let mut tx = self.read_models.begin().await?;
        let seen = self.read_models.seen_versions(&mut tx, &self.name, std::slice::from_ref(stream)).await?;
        self.read_models.commit(tx).await?;
        let last = seen.get(stream).copied().unwrap_or_default();
        if last.parked || version <= last.version.next() {
            return Ok(BatchReport::default());
        }
        let missing = usize::try_from(version.0 - last.version.0 - 1).unwrap_or(usize::MAX);
        let mut total = BatchReport::default();
        for event in self.store.read_stream(stream, last.version.next(), missing).await? {
            let one = Incoming::Trusted(event);
            total.add(match self.apply_and_commit(partition, std::slice::from_ref(&one), None).await {
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
    pub(crate) async fn dead_letter(
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
        if event.stream_version <= last.version {
            report.duplicates += 1;
            let progress = Progress { position: state.position, cursor, ..Progress::default() };
            self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
            self.read_models.commit(tx).await?;
            return Ok(report);
        }
        let mut letters = Vec::new();
        let from = last.version.next();
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
        let seen = Seen { version: event.stream_version, parked };
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
}

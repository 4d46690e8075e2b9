//! What operators do to one stream of a projection: retry or skip its parked events, or
//! rebuild it from the store; and to a stretch of the log: replay it.

use std::collections::HashMap;

use tidemark::{EventStore, RecordedEvent, StreamId, StreamVersion};

use super::{BatchReport, Worker};
use crate::admin::ReadModelsAdmin;
use crate::error::{ProjectionError, Result};
use crate::letters::DeadLetterStatus;
use crate::projection::Projection;
use crate::read_models::{Progress, Seen};

impl<P, R, S> Worker<P, R, S>
where
    R: ReadModelsAdmin,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Applies the parked events of `stream` again, in order, and unparks it; on failure
    /// nothing changes. Returns how many events were applied.
    pub(crate) async fn retry_parked(&self, partition: u32, stream: &StreamId) -> Result<u64> {
        let mut tx = self.read_models.begin().await?;
        let state = self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        let letters = self.read_models.take_parked(&mut tx, &self.name, stream).await?;
        let (Some(first), Some(last)) = (letters.first(), letters.last()) else {
            self.read_models.commit(tx).await?;
            return Ok(0);
        };
        let count = usize::try_from(last.stream_version.0 - first.stream_version.0 + 1).unwrap_or(usize::MAX);
        let events = self.store.read_stream(stream, first.stream_version, count).await?;
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
    pub(crate) async fn rebuild_stream(&self, partition: u32, stream: &StreamId) -> Result<BatchReport> {
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
        let version = events.last().map_or(StreamVersion::EMPTY, |e| e.stream_version);
        let seen = Seen { version, parked: false };
        let progress =
            Progress { position: state.position, streams: vec![(stream.clone(), seen)], ..Progress::default() };
        self.read_models.record(&mut tx, &self.name, partition, &progress).await?;
        self.read_models.commit(tx).await?;
        Ok(report)
    }

    /// Marks the parked events of `stream` skipped and unparks it. Returns how many.
    pub(crate) async fn skip_parked(&self, partition: u32, stream: &StreamId) -> Result<u64> {
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

    /// Applies again, in one transaction with `partition` locked, those of `events` (of
    /// that partition, in log order) the projection has taken in already: at or below
    /// the version it has seen of their stream, which must not be parked. The others are
    /// left to the runner (returned as `duplicates`: not applied here). A stream the
    /// runner has taken further than this page is brought, from the store, up to the
    /// version it has seen, so no stream is left behind where its runner was; `done`
    /// remembers how far, and later pages skip what that applied. Progress and seen
    /// versions stay as they are.
    pub(crate) async fn replay_events(
        &self,
        partition: u32,
        events: &[RecordedEvent],
        done: &mut HashMap<StreamId, u64>,
    ) -> Result<BatchReport> {
        let mut tx = self.read_models.begin().await?;
        self.read_models.lock_partition(&mut tx, &self.name, partition).await?;
        let mut streams: Vec<StreamId> = events.iter().map(|e| e.stream_id.clone()).collect();
        streams.sort_unstable();
        streams.dedup();
        let seen = self.read_models.seen_versions(&mut tx, &self.name, &streams).await?;
        let mut report = BatchReport::default();
        let mut handled = Vec::with_capacity(events.len());
        let mut last: HashMap<&StreamId, u64> = HashMap::new();
        for event in events {
            let (stream, version) = (&event.stream_id, event.stream_version.0);
            match seen.get(stream) {
                Some(s) if !s.parked && version <= s.version.0 => {
                    if done.get(stream).is_none_or(|&through| version > through) {
                        self.decode_into(event, &mut handled, &mut report)?;
                        last.insert(stream, version);
                    }
                }
                _ => report.duplicates += 1,
            }
        }
        for (stream, version) in last {
            let Some(through) = seen.get(stream).map(|s| s.version.0).filter(|&through| through > version) else {
                continue;
            };
            let count = usize::try_from(through - version).unwrap_or(usize::MAX);
            for event in &self.store.read_stream(stream, StreamVersion(version + 1), count).await? {
                self.decode_into(event, &mut handled, &mut report)?;
            }
            done.insert(stream.clone(), through);
        }
        self.apply_handled(&mut tx, &handled).await?;
        self.read_models.commit(tx).await?;
        Ok(report)
    }
}

//! A rebuild's pages, applied without reading what the shadow has seen.
//!
//! A live batch reads the last version the projection saw of each of its streams, to pass
//! over redeliveries and repair gaps. A rebuild's shadow takes the log in log order, a page
//! at a time, and each page records its position with its writes: everything at or below
//! the shadow's position is in it, and nothing above. So a page that follows the shadow's
//! position (checked under the partition's lock) holds only new events, in order, and needs
//! no seen versions read; it still records its streams' last versions, so that the swap's
//! catch-up and the live runner afterwards find them. A shadow with dead letters has parked
//! streams, whose later events must be parked too: its pages are checked.

use std::collections::HashMap;

use tidemark::{EventStore, LogPosition, RecordedEvent, StreamId, StreamVersion};

use crate::admin::ReadModelsAdmin;
use crate::error::{ProjectionError, Result};
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::read_models::{Progress, Seen};
use crate::worker::{BatchReport, Worker};

/// How an unchecked page went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Page {
    /// Applied and committed, with the shadow's position moved to its last event.
    Applied,
    /// Nothing written: the shadow is not where this rebuild left it (another instance
    /// rebuilds it too); it is at this position.
    Elsewhere(LogPosition),
    /// Nothing written: the projection failed on one of its events.
    Failed,
}

/// Whether `shadow`'s pages may go unchecked: it has no dead letters.
pub(crate) async fn unchecked<P, R: ReadModelsAdmin, S>(shadow: &Worker<P, R, S>) -> Result<bool> {
    Ok(shadow.read_models.dead_letters(&shadow.name).await?.is_empty())
}

/// Applies `events`, the log's next page after `after`, to the shadow in one transaction,
/// which records the page's position, event count and streams' last versions.
pub(crate) async fn apply_unchecked<P, R, S>(
    shadow: &Worker<P, R, S>,
    events: &[RecordedEvent],
    after: LogPosition,
) -> Result<Page>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    let Some(last) = events.last().map(|e| e.position) else { return Ok(Page::Applied) };
    let read_models = &shadow.read_models;
    let mut tx = read_models.begin().await?;
    let state = read_models.lock_partition(&mut tx, &shadow.name, 0).await?;
    if state.position != after {
        read_models.commit(tx).await?;
        return Ok(Page::Elsewhere(state.position));
    }
    let mut report = BatchReport::default();
    let mut handled = Vec::with_capacity(events.len());
    let applied = async {
        for event in events {
            shadow.decode_into(event, &mut handled, &mut report)?;
        }
        shadow.apply_handled(&mut tx, &handled).await
    };
    match applied.await {
        Ok(()) => {}
        // Dropped, the transaction takes nothing of the page with it.
        Err(ProjectionError::Apply { .. }) => return Ok(Page::Failed),
        Err(other) => return Err(other),
    }
    let streams = last_versions(events).into_iter().map(|(stream, version)| (stream, Seen { version, parked: false }));
    let events = report.applied + report.skipped;
    let progress = Progress { position: last, events, streams: streams.collect(), ..Progress::default() };
    read_models.record(&mut tx, &shadow.name, 0, &progress).await?;
    read_models.commit(tx).await?;
    Ok(Page::Applied)
}

/// Each stream's last version in `events`.
fn last_versions(events: &[RecordedEvent]) -> HashMap<StreamId, StreamVersion> {
    let mut last: HashMap<&StreamId, StreamVersion> = HashMap::new();
    for event in events {
        let version = last.entry(&event.stream_id).or_default();
        *version = (*version).max(event.stream_version);
    }
    last.into_iter().map(|(stream, version)| (stream.clone(), version)).collect()
}

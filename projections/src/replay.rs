//! Replaying a stretch of the log into a projection's live read model, in place: every
//! event after a log position (or recorded at or after a time) that the projection has
//! taken in already is applied again, in log order, up to the log's head as it was when
//! the replay started. Read by pages from the event store, each page applied per
//! partition in a transaction that locks the partition, so running runners wait for it
//! between their batches; in that transaction every stream the page touched is brought up
//! to the version its runner has reached (which may be past the page, and past the head
//! the replay started at), so no stream is left older than its runner had made it. Seen
//! versions and positions stay: events the projection has not taken in yet are left to
//! its runners, which would otherwise skip them as seen.
//!
//! Only a projection whose `apply` is idempotent (it sets what an event says rather than
//! adding to what is there) ends with the same read model as before plus the effects of
//! any code change; any other counts the replayed events twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tidemark::{EventStore, LogPosition, RecordedEvent, StreamId};

use crate::admin::ReadModelsAdmin;
use crate::error::Result;
use crate::projection::Projection;
use crate::worker::Worker;

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayFrom {
    /// After this log position: the events above it.
    After(LogPosition),
    /// At the first event recorded at or after this time (found by reading the log from
    /// its start).
    Since(DateTime<Utc>),
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// The replay took the events after this position.
    pub after: LogPosition,
    /// The last position it read (the log's head when it started, or `after` when
    /// nothing was there).
    pub through: LogPosition,
    /// Events handed to the projection again.
    pub applied: u64,
    /// Events of types the projection does not handle.
    pub skipped: u64,
    /// Events the projection had not taken in yet (or that sit behind a parked event),
    /// left to its runners.
    pub not_taken_in: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Replays the log from `from` into `worker`'s projection, `batch_size` events a page.
pub(crate) async fn replay<P, R, S>(
    worker: &Worker<P, R, S>,
    partition_of: &(dyn Fn(&StreamId) -> u32 + Send + Sync),
    from: ReplayFrom,
    batch_size: usize,
) -> Result<ReplayReport>
where
    R: ReadModelsAdmin,
    P: Projection<R>,
    S: EventStore + 'static,
{
    let started = Instant::now();
    let batch_size = batch_size.max(1);
    let head = worker.store.log_head().await?.unwrap_or(LogPosition::START);
    let after = match from {
        ReplayFrom::After(position) => position,
        ReplayFrom::Since(time) => before_first_since(&*worker.store, time, batch_size).await?.unwrap_or(head),
    };
    let mut report =
        ReplayReport { after, through: after, applied: 0, skipped: 0, not_taken_in: 0, elapsed: Duration::ZERO };
    tracing::info!(projection = %worker.name, after = %after, to = %head, "replaying the log");
    let mut done = HashMap::new();
    while report.through < head {
        let page = worker.store.read_log(report.through, batch_size).await?;
        let Some(last) = page.last().map(|e| e.position) else { break };
        let page: Vec<RecordedEvent> = page.into_iter().filter(|e| e.position <= head).collect();
        for (partition, events) in by_partition(page, partition_of) {
            let done = worker.replay_events(partition, &events, &mut done).await?;
            report.applied += done.applied;
            report.skipped += done.skipped;
            report.not_taken_in += done.duplicates;
        }
        report.through = last.min(head);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The position just before the first event recorded at or after `time` (the log's
/// start when that is its first event); `None` when no event is that recent.
async fn before_first_since<S: EventStore + ?Sized>(
    store: &S,
    time: DateTime<Utc>,
    page: usize,
) -> Result<Option<LogPosition>> {
    let mut before = LogPosition::START;
    loop {
        let events = store.read_log(before, page).await?;
        if events.is_empty() {
            return Ok(None);
        }
        for event in events {
            if event.recorded_at >= time {
                return Ok(Some(before));
            }
            before = event.position;
        }
    }
}

/// Splits a page by partition, keeping log order within each.
fn by_partition(
    page: Vec<RecordedEvent>,
    partition_of: &(dyn Fn(&StreamId) -> u32 + Send + Sync),
) -> Vec<(u32, Vec<RecordedEvent>)> {
    let mut groups: Vec<(u32, Vec<RecordedEvent>)> = Vec::new();
    for event in page {
        let partition = partition_of(&event.stream_id);
        match groups.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, events)) => events.push(event),
            None => groups.push((partition, vec![event])),
        }
    }
    groups
}

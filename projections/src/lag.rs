//! How far a projection is behind the log: the events of the log it has not taken in,
//! found by reading the log and comparing each event with the version the projection has
//! seen of its stream. Nothing here trusts a checkpoint to say what was applied, beyond
//! where to start reading: every partition's recorded position means that each of its
//! events up to it was taken in.
//!
//! A measurement also tells which partitions had nothing left to take in over the stretch
//! of log it read: their positions may move up to its end (see [`Measured::floors`]), so
//! that a partition that gets no events (or few) does not hold the start of every later
//! measurement back.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tidemark::{EventStore, LogPosition, StreamId, StreamVersion};

use crate::admin::ReadModelsAdmin;
use crate::error::Result;
use crate::read_models::{ReadModels, Seen};

/// Events read from the log per page while measuring.
const PAGE: usize = 2_000;

/// What a projection has not taken in yet, measured against the log's readable head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Lag {
    /// Events at or below `head` whose stream the projection has not seen up to their
    /// version: not applied, whether nobody has delivered them yet or a runner that died
    /// held them. Events parked as dead letters count as taken in (see the dead letters).
    pub events: u64,
    /// How long the oldest of them has been stored (zero when there are none).
    #[serde(serialize_with = "seconds")]
    pub oldest_age: Duration,
    /// The log head measured against (`None`: the log is empty).
    #[serde(serialize_with = "position")]
    pub head: Option<LogPosition>,
    /// False when the measurement stopped at its scan limit: `events` then adds an
    /// estimate of the events not read, which errs high, never low.
    pub exact: bool,
}

impl Lag {
    /// Whether everything up to the head has been taken in.
    pub fn caught_up(&self) -> bool {
        self.events == 0
    }
}

fn seconds<S: serde::Serializer>(age: &Duration, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(age.as_secs_f64())
}

fn position<S: serde::Serializer>(head: &Option<LogPosition>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    match head {
        Some(head) => serializer.serialize_str(&head.to_string()),
        None => serializer.serialize_none(),
    }
}

/// A lag measurement, and what it learnt about the partitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    /// The lag.
    pub lag: Lag,
    /// The position each partition had recorded (absent: none).
    recorded: HashMap<u32, LogPosition>,
    /// Partitions with an event not taken in within the stretch read.
    behind: HashSet<u32>,
    /// Where the stretch read ends (none read: `None`).
    read_to: Option<LogPosition>,
    partitions: u32,
}

impl Measured {
    /// The partitions whose recorded position may move up to the end of the stretch read:
    /// every event of theirs between their position and that end was taken in, and so is
    /// every event before their position.
    pub(crate) fn floors(&self) -> Vec<(u32, LogPosition)> {
        let Some(end) = self.read_to else { return Vec::new() };
        (0..self.partitions)
            .filter(|p| !self.behind.contains(p))
            .filter(|p| self.recorded.get(p).is_none_or(|at| *at < end))
            .map(|p| (p, end))
            .collect()
    }
}

/// Measures `projection`'s lag. The log is read from the lowest position recorded by its
/// `partitions` partitions (the start of the log for a partition that has recorded none),
/// at most `limit` events, and every event read is checked against the stream versions the
/// projection has seen; `partition_of` says which partition each event belongs to.
pub(crate) async fn measure<R, S>(
    read_models: &R,
    store: &S,
    projection: &str,
    partitions: u32,
    partition_of: &(dyn Fn(&StreamId) -> u32 + Send + Sync),
    limit: u64,
) -> Result<Measured>
where
    R: ReadModelsAdmin,
    S: EventStore,
{
    let partitions = partitions.max(1);
    let Some(head) = store.log_head().await? else {
        return Ok(Measured { lag: Lag { exact: true, ..Lag::default() }, partitions, ..Measured::default() });
    };
    let recorded: HashMap<u32, LogPosition> =
        read_models.partitions(projection).await?.into_iter().map(|(p, state)| (p, state.position)).collect();
    let start = (0..partitions).map(|p| recorded.get(&p).copied().unwrap_or_default()).min().unwrap_or_default();
    let mut after = start;
    let mut scan = Scan::default();
    let mut behind = HashSet::new();
    while after < head && scan.read < limit {
        let room = usize::try_from(limit - scan.read).unwrap_or(usize::MAX).min(PAGE);
        let page = store.read_log(after, room).await?;
        let Some(last) = page.last().map(|e| e.position) else { break };
        let seen = seen_versions(read_models, projection, &page).await?;
        for event in page.iter().filter(|e| e.position <= head) {
            scan.read += 1;
            let taken = seen.get(&event.stream_id).map_or(StreamVersion::EMPTY, |s| s.version);
            if taken < event.stream_version {
                scan.unapplied += 1;
                scan.oldest = Some(scan.oldest.map_or(event.recorded_at, |o| o.min(event.recorded_at)));
                behind.insert(partition_of(&event.stream_id));
            }
        }
        after = last.min(head);
    }
    let exact = after >= head || scan.read < limit;
    let estimate = if exact { 0 } else { head.sequence.saturating_sub(after.sequence) };
    let oldest_age = scan.oldest.map_or(Duration::ZERO, |t| (Utc::now() - t).to_std().unwrap_or_default());
    let lag = Lag { events: scan.unapplied + estimate, oldest_age, head: Some(head), exact };
    let read_to = (after > start).then_some(after);
    Ok(Measured { lag, recorded, behind, read_to, partitions })
}

#[derive(Default)]
struct Scan {
    read: u64,
    unapplied: u64,
    oldest: Option<DateTime<Utc>>,
}

/// What the projection has seen of the streams of `page`.
async fn seen_versions<R: ReadModels>(
    read_models: &R,
    projection: &str,
    page: &[tidemark::RecordedEvent],
) -> Result<HashMap<StreamId, Seen>> {
    let mut streams: Vec<StreamId> = page.iter().map(|e| e.stream_id.clone()).collect();
    streams.sort_unstable();
    streams.dedup();
    let mut tx = read_models.begin().await?;
    let seen = read_models.seen_versions(&mut tx, projection, &streams).await?;
    read_models.commit(tx).await?;
    Ok(seen)
}

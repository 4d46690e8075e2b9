//! Counters and state of a relay, readable at any time without waiting on it.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tidemark::LogPosition;

/// What a relay is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayRole {
    /// `run` has not been called yet.
    Starting,
    /// Waiting for the leadership, which another relay of the same name holds.
    Standby,
    /// The leader: publishing.
    Leading,
    /// The leader, waiting before a retry after a failure.
    Retrying,
    /// `run` has returned.
    Stopped,
}

/// A snapshot of a relay's counters (since it was created) and state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStatus {
    /// What it is doing.
    pub role: RelayRole,
    /// Events sent to JetStream, republishes included (downcast copies not counted).
    pub published: u64,
    /// PubAcks of events received, duplicates included (downcast copies not counted).
    pub acked: u64,
    /// PubAcks that reported a duplicate (an event JetStream already held).
    pub duplicates: u64,
    /// Downcast copies acknowledged by JetStream, republishes and duplicates included.
    pub downcasts: u64,
    /// Downcast copies not published because the downcast failed (the transform refused
    /// or panicked, or the copy was too large); their events were published.
    pub downcast_failures: u64,
    /// Failures that led to a retry.
    pub failures: u64,
    /// How often it became the leader.
    pub leaderships: u64,
    /// Position of the last event acknowledged, in log order (with its downcast copies).
    pub last_acked: Option<LogPosition>,
    /// The checkpoint as last loaded or saved.
    pub checkpoint: Option<LogPosition>,
}

/// A cheap, cloneable handle that reads a relay's [`RelayStatus`].
#[derive(Debug, Clone)]
pub struct RelayMonitor(pub(crate) Arc<Stats>);

impl RelayMonitor {
    /// The current status.
    pub fn status(&self) -> RelayStatus {
        self.0.snapshot()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    role: AtomicU8,
    published: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    downcasts: AtomicU64,
    downcast_failures: AtomicU64,
    failures: AtomicU64,
    leaderships: AtomicU64,
    positions: Mutex<Positions>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Positions {
    last_acked: Option<LogPosition>,
    checkpoint: Option<LogPosition>,
}

const ROLES: [RelayRole; 5] =
    [RelayRole::Starting, RelayRole::Standby, RelayRole::Leading, RelayRole::Retrying, RelayRole::Stopped];

impl Stats {
    pub(crate) fn set_role(&self, role: RelayRole) {
        let index = ROLES.iter().position(|r| *r == role).unwrap_or(0);
        self.role.store(u8::try_from(index).unwrap_or(0), Ordering::Relaxed);
        crate::metrics::leader(matches!(role, RelayRole::Leading | RelayRole::Retrying));
    }

    pub(crate) fn role(&self) -> RelayRole {
        ROLES.get(usize::from(self.role.load(Ordering::Relaxed))).copied().unwrap_or(RelayRole::Starting)
    }

    pub(crate) fn became_leader(&self) {
        self.leaderships.fetch_add(1, Ordering::Relaxed);
        self.set_role(RelayRole::Leading);
    }

    pub(crate) fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tidemark_relay_published_total").increment(1);
    }

    /// Counts the PubAck of an event's message.
    pub(crate) fn acked(&self, duplicate: bool) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tidemark_relay_acked_total").increment(1);
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tidemark_relay_duplicates_total").increment(1);
        }
    }

    /// Counts the PubAck of a downcast copy.
    pub(crate) fn downcast_acked(&self) {
        self.downcasts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a downcast copy not published.
    pub(crate) fn downcast_failed(&self) {
        self.downcast_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that every message of the event at `position` is acknowledged.
    pub(crate) fn completed(&self, position: LogPosition) {
        self.positions().last_acked = Some(position);
    }

    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("tidemark_relay_failures_total").increment(1);
    }

    pub(crate) fn checkpoint(&self, position: LogPosition) {
        self.positions().checkpoint = Some(position);
        metrics::gauge!("tidemark_relay_checkpoint_sequence").set(position.sequence as f64);
    }

    /// The last acknowledged position, if the saved checkpoint is behind it.
    pub(crate) fn unsaved(&self) -> Option<LogPosition> {
        let positions = *self.positions();
        positions.last_acked.filter(|acked| positions.checkpoint.is_none_or(|saved| saved < *acked))
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> RelayStatus {
        let positions = *self.positions();
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RelayStatus {
            role: self.role(),
            published: count(&self.published),
            acked: count(&self.acked),
            duplicates: count(&self.duplicates),
            downcasts: count(&self.downcasts),
            downcast_failures: count(&self.downcast_failures),
            failures: count(&self.failures),
            leaderships: count(&self.leaderships),
            last_acked: positions.last_acked,
            checkpoint: positions.checkpoint,
        }
    }
}

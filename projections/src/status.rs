//! What a runner is doing, for tests, health checks and the ops CLI.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::lag::Lag;
use crate::worker::BatchReport;

/// A snapshot of a runner's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerStatus {
    /// Partitions this runner is applying.
    pub partitions: BTreeSet<u32>,
    /// Batches committed.
    pub batches: u64,
    /// Totals over every committed batch.
    pub totals: BatchReport,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// The projection's lag as last measured (every
    /// [`RunnerConfig::lag_interval`](crate::RunnerConfig::lag_interval)), if it was.
    pub lag: Option<Lag>,
    /// Whether the projection is paused (`projections pause`): its partition loops wait
    /// for it to be resumed.
    pub paused: bool,
}

/// Shared, cheap to clone handle on a runner's status.
#[derive(Debug, Clone)]
pub(crate) struct StatusCell {
    status: Arc<Mutex<RunnerStatus>>,
    commits: watch::Sender<u64>,
}

impl Default for StatusCell {
    fn default() -> Self {
        Self { status: Arc::default(), commits: watch::channel(0).0 }
    }
}

impl StatusCell {
    fn lock(&self) -> MutexGuard<'_, RunnerStatus> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> RunnerStatus {
        self.lock().clone()
    }

    pub(crate) fn committed(&self, report: BatchReport) {
        {
            let mut s = self.lock();
            s.batches += 1;
            s.totals.add(report);
            s.last_error = None;
        }
        self.commits.send_modify(|n| *n += 1);
    }

    pub(crate) fn lag(&self, lag: Lag) {
        self.lock().lag = Some(lag);
    }

    pub(crate) fn paused(&self, paused: bool) {
        self.lock().paused = paused;
    }

    pub(crate) fn failed(&self, error: String) {
        self.lock().last_error = Some(error);
    }

    pub(crate) fn owns(&self, partition: u32, owned: bool) {
        let mut s = self.lock();
        if owned {
            s.partitions.insert(partition);
        } else {
            s.partitions.remove(&partition);
        }
    }

    /// Changes whenever a batch commits.
    pub(crate) fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

//! Runner settings.

use std::time::Duration;

/// What happens to an event a projection keeps failing on (after `max_attempts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonPolicy {
    /// The event and every later event of its stream go to the dead letters, where they
    /// wait for a retry (after a fix) or a skip; other streams keep flowing. The default.
    #[default]
    Park,
    /// The partition stops at the event and keeps retrying it with backoff.
    Halt,
    /// The event is recorded as a skipped dead letter and the stream goes on without it.
    Skip,
}

/// What a runner does at start when the projection's version differs from the one its
/// read model was built with (or the read model does not exist yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionChange {
    /// Rebuild from the log into a shadow, swap it in, then run (the default; logged).
    #[default]
    Rebuild,
    /// Refuse to run with [`ProjectionError::VersionChanged`](crate::ProjectionError::VersionChanged)
    /// until an operator rebuilds. A projection never set up is still built.
    Refuse,
}

/// How a [`ProjectionRunner`](crate::ProjectionRunner) works. Every knob has a default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// Most messages applied in one transaction (default 500).
    pub batch_size: usize,
    /// First delay after a failure (default 100 ms); doubles, with jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest delay after failures (default 10 s).
    pub max_backoff: Duration,
    /// How often a shared runner looks for partitions to take or give back (default 1 s).
    pub rebalance_interval: Duration,
    /// The name instances of the runner share partitions under, and the feed names its
    /// consumers after (default: the projection's name).
    pub consumer: Option<String>,
    /// What happens to a poison event (default [`PoisonPolicy::Park`]).
    pub poison: PoisonPolicy,
    /// What to do when the projection's version changed (default [`VersionChange::Rebuild`]).
    pub version_change: VersionChange,
    /// Attempts at a batch failing in the projection's code before its events are tried
    /// one at a time and the failing one is handled by `poison` (default 5).
    pub max_attempts: u32,
    /// How long a partition that has just committed a batch keeps the next batch's
    /// transaction begun while it waits for that batch (default 100 ms; zero: never begin
    /// early). The batch then skips the round trip of `BEGIN` and its locks. Such a
    /// transaction holds a connection, its partition's lock and its projection's shared
    /// lock (a rebuild, reset or drop waits for it); unused, it is committed after this
    /// time, and the partition's next wait begins nothing unless batches come within it
    /// again. Only read models that say so begin early
    /// ([`BatchOptimisations::begins_early`](crate::BatchOptimisations::begins_early)).
    pub begin_early_for: Duration,
    /// How often a running runner measures its projection's lag (see
    /// [`ProjectionRunner::lag`](crate::ProjectionRunner::lag)) for its status and the lag
    /// gauges, whether batches commit or not (default 5 s; zero: never).
    pub lag_interval: Duration,
    /// Most log events one lag measurement reads (default 10,000); past it, the events
    /// left are estimated from sequence numbers, which errs high.
    pub lag_scan_limit: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            rebalance_interval: Duration::from_secs(1),
            consumer: None,
            poison: PoisonPolicy::Park,
            version_change: VersionChange::Rebuild,
            max_attempts: 5,
            begin_early_for: Duration::from_millis(100),
            lag_interval: Duration::from_secs(5),
            lag_scan_limit: 10_000,
        }
    }
}

impl RunnerConfig {
    /// Sets the batch size (at least 1).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Sets the retry delays.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Fresh retry delays from `min_backoff` to `max_backoff`.
    pub(crate) fn retry_delays(&self) -> tidemark::Backoff {
        tidemark::Backoff::new(self.min_backoff, self.max_backoff)
    }

    /// Sets how often a shared runner rebalances.
    pub fn rebalance_interval(mut self, interval: Duration) -> Self {
        self.rebalance_interval = interval;
        self
    }

    /// Sets the poison policy and the attempts before it applies (at least 1).
    pub fn poison(mut self, policy: PoisonPolicy, max_attempts: u32) -> Self {
        self.poison = policy;
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets what happens when the projection's version changed.
    pub fn on_version_change(mut self, policy: VersionChange) -> Self {
        self.version_change = policy;
        self
    }

    /// Sets how long a batch transaction begun early waits for its batch (zero: never
    /// begin early).
    pub fn begin_early_for(mut self, wait: Duration) -> Self {
        self.begin_early_for = wait;
        self
    }

    /// Sets how often the lag is measured while running (zero: never).
    pub fn lag_interval(mut self, interval: Duration) -> Self {
        self.lag_interval = interval;
        self
    }

    /// Sets the most log events one lag measurement reads (at least 1).
    pub fn lag_scan_limit(mut self, events: u64) -> Self {
        self.lag_scan_limit = events.max(1);
        self
    }

    /// Sets the consumer name.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }
}

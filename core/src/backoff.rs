//! Delays between retries: exponential with jitter, reset after progress.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Retry delays from `min` doubling up to `max`, each plus a random jitter of up to the
/// same amount, never running out. Every retry loop of the runtime, the relay and the
/// projections alike, waits with one of these, and [`reset`](Self::reset)s it after
/// progress.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// Delays from `min` doubling up to `max` (`max` below `min` counts as `min`).
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        let builder =
            ExponentialBuilder::new().with_min_delay(min).with_max_delay(max).with_jitter().without_max_times();
        Self { builder, delays: builder.build(), max }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        // Without a maximum number of attempts the sequence never ends.
        self.delays.next().unwrap_or(self.max)
    }

    /// Starts again from the shortest delay, after progress.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }

    /// Sleeps for the next delay unless `cancelled` completes first; false when it did.
    pub async fn pause(&mut self, cancelled: impl Future<Output = ()>) -> bool {
        let delay = self.next_delay();
        tokio::time::timeout(delay, cancelled).await.is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(800));
        let mut backoff = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= min && *d <= max * 2), "{delays:?}");
        assert!(delays[9] >= max, "capped delays stay at the maximum plus jitter: {delays:?}");
        assert!(delays[0] < min * 2, "{delays:?}");
        backoff.reset();
        assert!(backoff.next_delay() < min * 2);
    }

    #[tokio::test]
    async fn a_pause_ends_early_when_cancelled_and_says_so() {
        let mut backoff = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
        assert!(!backoff.pause(std::future::ready(())).await);
        let mut short = Backoff::new(Duration::from_millis(1), Duration::from_millis(2));
        assert!(short.pause(std::future::pending()).await);
    }
}

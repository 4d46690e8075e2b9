//! Delays between retries: exponential with jitter (backon), reset after progress.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// Retry delays from `min` doubling up to `max`, each plus a random jitter of up to the
/// same amount, never running out.
#[derive(Debug)]
pub(crate) struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
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
}

/// Sleeps for `delay`; returns false when `shutdown` fires first.
pub(crate) async fn sleep_unless_cancelled(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
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
}

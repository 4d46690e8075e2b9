//! Delays between retries: the core's [`Backoff`], and a sleep that shutdown cuts short.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub(crate) use tidemark::Backoff;

/// Sleeps for `delay`; returns false when `shutdown` fires first.
pub(crate) async fn sleep_unless_cancelled(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

//! Waiting on a condition in tests, never on a bare sleep.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `condition` every 10 ms until it holds; panics naming `what` when `deadline`
/// passes first.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !condition().await {
        assert!(Instant::now() < until, "timed out after {deadline:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

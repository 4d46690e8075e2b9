//! The background tasks of a process (the bus pump, the relay, the consumers), stopped
//! together: on shutdown, or when one of them fails in a way retrying cannot fix, so a
//! process never keeps serving with a dead consumer behind it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A background task that stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{task} stopped: {error}")]
pub struct TaskFailure {
    /// Which task, such as `relay` or `consumer orders`.
    pub task: String,
    /// Why it stopped.
    pub error: String,
}

/// Background tasks sharing one shutdown token.
#[derive(Debug)]
pub struct Tasks {
    shutdown: CancellationToken,
    set: JoinSet<Result<(), TaskFailure>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Self::new(CancellationToken::new())
    }
}

impl Tasks {
    /// No tasks yet; they stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { shutdown, set: JoinSet::new() }
    }

    /// The token that stops every task. A failing task cancels it too.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns `work`, handing it the shutdown token. If it returns an error, the error is
    /// logged and every other task is stopped.
    pub fn spawn<W, Fut, E>(&mut self, task: impl Into<String>, work: W)
    where
        W: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let task = task.into();
        let shutdown = self.shutdown.clone();
        let running = work(shutdown.clone());
        self.set.spawn(async move {
            running.await.map_err(|error| {
                tracing::error!(%task, %error, "a background task stopped; shutting the process down");
                shutdown.cancel();
                TaskFailure { task, error: error.to_string() }
            })
        });
    }

    /// Stops every task and waits for them; returns the first failure, if any.
    pub async fn join(mut self) -> Result<(), TaskFailure> {
        self.shutdown.cancel();
        let mut first = None;
        while let Some(joined) = self.set.join_next().await {
            let failure = match joined {
                Ok(result) => result.err(),
                Err(error) => Some(TaskFailure { task: "a background task".to_owned(), error: error.to_string() }),
            };
            first = first.or(failure);
        }
        first.map_or(Ok(()), Err)
    }
}

/// Retry delays: 100 ms doubling to 10 s, with jitter, never running out.
pub(crate) fn retry_delays() -> impl Iterator<Item = Duration> {
    let max = Duration::from_secs(10);
    let builder = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max)
        .with_jitter()
        .without_max_times();
    builder.build().chain(std::iter::repeat(max))
}

/// Sleeps for `delay` unless `stop` fires first; false when stopped.
pub(crate) async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

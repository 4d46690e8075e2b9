//! Read-your-writes: waiting until a projection has taken in a stream version.

use std::time::Duration;

use tidemark::{StreamId, StreamVersion};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admin::ReadModelsAdmin;
use crate::error::{ProjectionError, Result};

/// How often a wait looks again when nothing in this process signals a commit.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `projection` (running in this process or elsewhere) has seen `stream` at
/// `version` or later, or `timeout` passes. `commits`, when the runner is in this
/// process, wakes the wait at each commit; otherwise it polls every 20 ms.
pub async fn wait_for_version<R: ReadModelsAdmin>(
    read_models: &R,
    projection: &str,
    stream: &StreamId,
    version: StreamVersion,
    timeout: Duration,
    mut commits: Option<watch::Receiver<u64>>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(rx) = commits.as_mut() {
            rx.borrow_and_update();
        }
        if read_models.stream_seen(projection, stream).await? >= version {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ProjectionError::WaitTimedOut {
                projection: projection.to_owned(),
                stream_id: stream.to_string(),
                version,
            });
        }
        let step = (deadline - now).min(POLL);
        match commits.as_mut() {
            Some(rx) => {
                let _ = tokio::time::timeout(step, rx.changed()).await;
            }
            None => tokio::time::sleep(step).await,
        }
    }
}

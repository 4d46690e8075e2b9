//! The paused flag as the partition loops see it: read from the read models at most
//! every [`FRESH_FOR`], shared by every partition of the runner, so a batch costs no
//! round trip for it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::admin::ReadModelsAdmin;

/// How long a read of the flag is trusted: a pause takes hold within this (and the batch
/// being applied).
pub(crate) const FRESH_FOR: Duration = Duration::from_millis(500);

/// The cached paused flag of one projection.
#[derive(Debug, Default)]
pub(crate) struct PauseGate {
    /// When the flag was last read, and what it said.
    cached: Mutex<Option<(Instant, bool)>>,
}

impl PauseGate {
    /// Whether the projection is paused, read again when the last read is older than
    /// [`FRESH_FOR`]. A failed read keeps the last answer (not paused before any).
    pub(crate) async fn paused<R: ReadModelsAdmin>(&self, read_models: &R, projection: &str) -> bool {
        let cached = *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, paused)) = cached {
            if at.elapsed() < FRESH_FOR {
                return paused;
            }
        }
        let paused = match read_models.paused(projection).await {
            Ok(paused) => paused,
            Err(e) => {
                tracing::debug!(projection, error = %e, "reading the paused flag failed");
                cached.is_some_and(|(_, paused)| paused)
            }
        };
        *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), paused));
        paused
    }

    /// Waits while the projection is paused, reading the flag every [`FRESH_FOR`]. False
    /// when `stop` fired first.
    pub(crate) async fn wait_resumed<R: ReadModelsAdmin>(
        &self,
        read_models: &R,
        projection: &str,
        stop: &CancellationToken,
    ) -> bool {
        while self.paused(read_models, projection).await {
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(FRESH_FOR) => {}
            }
        }
        !stop.is_cancelled()
    }
}

//! Sharing partitions between runner instances.
//!
//! Every instance of a projection takes a seat at a [`Coordinator`] (which counts the live
//! instances) and claims the partitions it applies there. Each aims at
//! `ceil(P / members)` partitions: it gives back extras and takes free ones at every
//! rebalance tick. A killed instance loses its seat and its claims (with PostgreSQL, its
//! connection closes and its advisory locks vanish), and the others take its partitions at
//! their next tick. The claims only divide the work: correctness never depends on them,
//! because every batch locks its partition in the read-model database.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tidemark::EventStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::ReadModelsAdmin;
use crate::error::Result;
use crate::feed::Feed;
use crate::optimisations::BatchOptimisations;
use crate::partition::{run_partition, Shared};
use crate::projection::Projection;

/// Where runner instances meet to share the partitions of a projection (PostgreSQL
/// advisory locks in `tidemark-projections-postgres`).
pub trait Coordinator: Clone + Send + Sync + 'static {
    /// One instance's membership, with the partitions it claimed; dropping it gives them
    /// all back.
    type Seat: Seat;
    /// Held while an instance works alone (preparing or rebuilding a read model); dropping
    /// it lets the next one in.
    type Guard: Send;

    /// Joins the instances of the projection `consumer`.
    fn join(&self, consumer: &str) -> impl Future<Output = Result<Self::Seat>> + Send;

    /// Waits for, then holds, the exclusive section `what` of the projection `consumer`.
    fn exclusive(&self, what: &'static str, consumer: &str) -> impl Future<Output = Result<Self::Guard>> + Send;
}

/// One instance's membership at a [`Coordinator`].
pub trait Seat: Send {
    /// How many instances of the projection hold a seat, this one included (at least 1).
    fn members(&mut self) -> impl Future<Output = Result<u32>> + Send;

    /// Claims `partition` if no other instance holds it.
    fn try_claim(&mut self, partition: u32) -> impl Future<Output = Result<bool>> + Send;

    /// Gives `partition` back.
    fn release(&mut self, partition: u32) -> impl Future<Output = Result<()>> + Send;
}

struct Running {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped without a clean stop (the coordinator itself was aborted): end the task.
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

impl Running {
    /// Stops the loop after its current batch and waits for it.
    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

/// Takes and gives back partitions until `shutdown`, reconnecting after failures.
pub(crate) async fn coordinate<P, R, S, F, C>(
    shared: Arc<Shared<P, R, S, F>>,
    coordinator: C,
    shutdown: CancellationToken,
) where
    C: Coordinator,
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let mut owned: BTreeMap<u32, Running> = BTreeMap::new();
    let mut backoff = shared.config.retry_delays();
    while !shutdown.is_cancelled() {
        match coordinator.join(&shared.consumer).await {
            Ok(mut seat) => {
                backoff.reset();
                let result = balance(&shared, &mut seat, &mut owned, &shutdown).await;
                stop_all(&shared, &mut owned).await;
                drop(seat);
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(projection = %shared.worker.name, error = %e, "lost the coordination connection");
                        shared.status.failed(e.to_string());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(projection = %shared.worker.name, error = %e, "cannot join the runner group; retrying");
                shared.status.failed(e.to_string());
            }
        }
        if !backoff.pause(shutdown.cancelled()).await {
            return;
        }
    }
}

async fn stop_all<P, R, S, F>(shared: &Shared<P, R, S, F>, owned: &mut BTreeMap<u32, Running>) {
    for (partition, running) in std::mem::take(owned) {
        running.stop().await;
        shared.status.owns(partition, false);
    }
}

/// One rebalance per tick until `shutdown` (Ok) or a lock query fails (Err).
async fn balance<P, R, S, F>(
    shared: &Arc<Shared<P, R, S, F>>,
    seat: &mut impl Seat,
    owned: &mut BTreeMap<u32, Running>,
    shutdown: &CancellationToken,
) -> Result<()>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let partitions = shared.feed.partitions();
    loop {
        let members = seat.members().await?;
        let target = partitions.div_ceil(members) as usize;
        while owned.len() > target {
            let Some((partition, running)) = owned.pop_last() else { break };
            running.stop().await;
            seat.release(partition).await?;
            shared.status.owns(partition, false);
            tracing::info!(projection = %shared.worker.name, partition, "gave a partition back");
        }
        for partition in 0..partitions {
            if owned.len() >= target {
                break;
            }
            if owned.contains_key(&partition) {
                continue;
            }
            if seat.try_claim(partition).await? {
                let stop = CancellationToken::new();
                let handle = tokio::spawn(run_partition(shared.clone(), partition, stop.clone()));
                owned.insert(partition, Running { stop, handle: Some(handle) });
                shared.status.owns(partition, true);
                tracing::info!(projection = %shared.worker.name, partition, "took a partition");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(shared.config.rebalance_interval) => {}
        }
    }
}

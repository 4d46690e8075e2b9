//! Waiting for a partition's next batch, beginning its transaction meanwhile when the
//! backend allows it (see [`BatchOptimisations::begins_early`]), so the batch does not
//! wait for `BEGIN` and its locks.

use std::time::{Duration, Instant};

use tidemark::EventStore;
use tokio_util::sync::CancellationToken;

use super::{Shared, Taken};
use crate::config::RunnerConfig;
use crate::error::Result;
use crate::feed::{Delivery, Feed, Subscription};
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::worker::Batch;

/// The waits of one partition loop for a batch on an idle partition.
pub(super) struct Waits {
    /// How long a transaction begun early waits for its batch.
    early_for: Duration,
    /// Whether the next wait begins its batch's transaction early: not after a wait that
    /// outlasted `early_for` (batches come rarely).
    early: bool,
}

/// What a wait for the next batch that began its transaction early brought.
struct BegunEarly<T> {
    next: Result<Delivery>,
    /// The batch, begun, unless its transaction failed to begin or waited too long.
    batch: Option<Batch<T>>,
    /// Whether the batch took longer than `begin_early_for` to come.
    outlasted: bool,
}

impl Waits {
    pub(super) fn new(config: &RunnerConfig) -> Self {
        Self { early_for: config.begin_early_for, early: !config.begin_early_for.is_zero() }
    }

    /// The next batch, begun when it began early; None when `stop` fired first.
    pub(super) async fn next<P, R, S, F>(
        &mut self,
        shared: &Shared<P, R, S, F>,
        subscription: &mut F::Subscription,
        partition: u32,
        stop: &CancellationToken,
    ) -> Option<Result<Taken<R::Tx>>>
    where
        R: BatchOptimisations,
        P: Projection<R>,
        S: EventStore + 'static,
        F: Feed,
    {
        let (next, begun) = if self.early && shared.worker.begins_early() {
            let waited = next_beginning_early(shared, subscription, partition, stop).await?;
            self.early = !waited.outlasted;
            (waited.next, waited.batch)
        } else {
            let started = Instant::now();
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = subscription.next_batch(shared.config.batch_size) => next,
            };
            self.early = started.elapsed() < self.early_for;
            (next, None)
        };
        match next {
            // Checked against the store while its transaction begins (unless it has
            // begun already).
            Ok(delivery) => Some(Ok(Taken { delivery, batch: begun.unwrap_or_else(|| Batch::idle(partition)) })),
            Err(e) => {
                if let Some(mut batch) = begun {
                    let _ = shared.worker.commit(&mut batch).await;
                }
                Some(Err(e))
            }
        }
    }
}

/// Waits for the next batch of an idle partition while its transaction begins. None when
/// `stop` fired first.
async fn next_beginning_early<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    subscription: &mut F::Subscription,
    partition: u32,
    stop: &CancellationToken,
) -> Option<BegunEarly<R::Tx>>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let worker = &shared.worker;
    let next = subscription.next_batch(shared.config.batch_size);
    tokio::pin!(next);
    let begin = worker.begin(partition);
    tokio::pin!(begin);
    let began = tokio::select! {
        () = stop.cancelled() => return None,
        next = &mut next => {
            // The batch came first; its transaction is on its way, further along than
            // one begun now would be. If it fails, the batch begins another.
            let batch = tokio::select! {
                () = stop.cancelled() => return None,
                began = &mut begin => began.ok(),
            };
            return Some(BegunEarly { next, batch, outlasted: false });
        }
        began = &mut begin => began,
    };
    let mut batch = match began {
        Ok(batch) => batch,
        Err(e) => {
            tracing::debug!(projection = %worker.name, partition, error = %e, "beginning a batch early failed");
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = &mut next => next,
            };
            return Some(BegunEarly { next, batch: None, outlasted: true });
        }
    };
    tokio::select! {
        () = stop.cancelled() => {
            let _ = worker.commit(&mut batch).await;
            None
        }
        next = &mut next => Some(BegunEarly { next, batch: Some(batch), outlasted: false }),
        () = tokio::time::sleep(shared.config.begin_early_for) => {
            if let Err(e) = worker.commit(&mut batch).await {
                tracing::debug!(projection = %worker.name, partition, error = %e, "ending an unused batch transaction failed");
            }
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = &mut next => next,
            };
            Some(BegunEarly { next, batch: None, outlasted: true })
        }
    }
}

//! The loop that applies one partition: read where the read model stands, subscribe right
//! after it, take a batch, apply it with its cursor in one transaction (retrying with
//! backoff), repeat. A paused projection (see [`pause`]) takes no batch: the loop drops
//! its subscription and what it took in, waits until it is resumed, and subscribes again
//! after the cursor last committed. Any failure to subscribe or receive opens a new subscription after
//! the cursor last committed, so nothing the loop took in and did not commit is lost or
//! waited for.

use std::sync::Arc;
use std::time::Instant;

use tidemark::{Backoff, EventStore};
use tokio_util::sync::CancellationToken;

use crate::admin::ReadModelsAdmin;
use crate::config::{PoisonPolicy, RunnerConfig};
use crate::error::{ProjectionError, Result};
use crate::feed::{Delivery, Feed, FeedCursor, Subscription};
use crate::metrics;
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::status::StatusCell;
use crate::worker::{Batch, Worker};

mod early;
mod pause;

pub(crate) use pause::PauseGate;

/// Everything one partition loop shares with the runner.
#[derive(Debug)]
pub(crate) struct Shared<P, R, S, F> {
    pub worker: Worker<P, R, S>,
    pub feed: F,
    pub config: RunnerConfig,
    pub consumer: String,
    pub status: StatusCell,
    pub pause: PauseGate,
}

/// A delivery taken in, with its batch: idle (perhaps checked against the store ahead
/// of its transaction) or begun (its transaction opened while it was awaited).
struct Taken<T> {
    delivery: Delivery,
    batch: Batch<T>,
}

/// Applies `partition` until `stop` fires. Failures are logged and retried with backoff.
pub(crate) async fn run_partition<P, R, S, F>(shared: Arc<Shared<P, R, S, F>>, partition: u32, stop: CancellationToken)
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let mut backoff = shared.config.retry_delays();
    let (read_models, name) = (&shared.worker.read_models, &shared.worker.name);
    loop {
        if shared.pause.paused(read_models, name).await {
            shared.status.paused(true);
            if !shared.pause.wait_resumed(read_models, name, &stop).await {
                return;
            }
            tracing::info!(projection = %name, partition, "resumed");
        }
        shared.status.paused(false);
        match follow(&shared, partition, &mut backoff, &stop).await {
            Ok(Followed::Stopped) => return,
            Ok(Followed::Paused) => tracing::info!(projection = %name, partition, "paused"),
            Err(e) => {
                tracing::warn!(projection = %name, partition, error = %e, "the feed failed; subscribing again");
                shared.status.failed(e.to_string());
                if !backoff.pause(stop.cancelled()).await {
                    return;
                }
            }
        }
    }
}

/// Why [`follow`] returned without a failure.
enum Followed {
    /// `stop` fired.
    Stopped,
    /// The projection was paused.
    Paused,
}

/// Follows `partition` on one subscription until `stop` fires or the projection is
/// paused (Ok) or subscribing or receiving fails (Err). Each batch is applied until it commits while the next one is
/// taken in.
async fn follow<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    partition: u32,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> Result<Followed>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let mut subscription = tokio::select! {
        () = stop.cancelled() => return Ok(Followed::Stopped),
        s = subscribe(shared, partition) => s?,
    };
    // The next batch, when it had arrived already, taken in (and perhaps checked against
    // the store) while the one before it was applied.
    let mut ahead: Option<Taken<R::Tx>> = None;
    let mut waits = early::Waits::new(&shared.config);
    loop {
        let taken = match ahead.take() {
            Some(taken) => taken,
            None => match waits.next(shared, &mut subscription, partition, stop).await {
                Some(taken) => taken?,
                None => return Ok(Followed::Stopped),
            },
        };
        if shared.pause.paused(&shared.worker.read_models, &shared.worker.name).await {
            return Ok(Followed::Paused);
        }
        let cursor = taken.delivery.last_cursor();
        let (committed, next) = apply_taking_next(shared, &mut subscription, partition, taken, backoff, stop).await;
        if !committed {
            return Ok(Followed::Stopped);
        }
        if let Some(cursor) = cursor {
            subscription.committed(cursor).await;
        }
        ahead = next.transpose()?;
    }
}

/// Applies a batch until it commits (false when `stop` fired first) while taking in the
/// next one, if it comes before that.
async fn apply_taking_next<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    subscription: &mut F::Subscription,
    partition: u32,
    taken: Taken<R::Tx>,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> (bool, Option<Result<Taken<R::Tx>>>)
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let (applied, busy) = tokio::sync::oneshot::channel::<()>();
    let applying = async {
        let committed = apply_until_committed(shared, taken, backoff, stop).await;
        let _ = applied.send(());
        committed
    };
    let taking_next = async {
        let busy = async {
            let _ = busy.await;
        };
        let next = subscription.next_batch_while(shared.config.batch_size, busy).await?;
        let Ok(delivery) = next else { return next.err().map(Err) };
        let mut batch = Batch::idle(partition);
        // A full batch came in while the one before it was applied: it is checked now,
        // likely still in that time. A batch that ends because the one before it
        // committed is checked while its own transaction begins, as a batch taken in on
        // an idle partition is: checking it here would add a round trip before that.
        if delivery.len() >= shared.config.batch_size {
            shared.worker.check_ahead(&mut batch, &delivery.messages).await;
        }
        Some(Ok(Taken { delivery, batch }))
    };
    tokio::join!(applying, taking_next)
}

/// Reads the cursor the read model recorded for `partition` and opens a subscription
/// right after it.
async fn subscribe<P, R, S, F>(shared: &Shared<P, R, S, F>, partition: u32) -> Result<F::Subscription>
where
    R: ReadModelsAdmin,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let after: Option<FeedCursor> = shared.worker.cursor(partition).await?;
    shared.feed.subscribe(&shared.consumer, partition, after).await
}

/// Applies a batch until it commits, retrying with backoff and, for a batch that keeps
/// failing on an event, applying it event by event (unless the policy halts). False when
/// `stop` fired first.
async fn apply_until_committed<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    taken: Taken<R::Tx>,
    backoff: &mut Backoff,
    stop: &CancellationToken,
) -> bool
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let (worker, name) = (&shared.worker, &shared.worker.name);
    let Taken { delivery, mut batch } = taken;
    let (messages, cursor) = (&delivery.messages[..], delivery.last_cursor());
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = match worker.apply(&mut batch, messages, cursor).await {
            Ok(()) => worker.commit(&mut batch).await,
            Err(e) => Err(e),
        };
        let result = match attempt {
            Err(e @ ProjectionError::Apply { .. }) if isolate(&shared.config, attempts) => {
                tracing::warn!(projection = %name, partition = batch.partition(), error = %e,
                    "a batch keeps failing: applying its events one by one");
                worker.apply_one_by_one(batch.partition(), messages, &delivery.cursors, shared.config.poison).await
            }
            other => other,
        };
        match result {
            Ok(report) => {
                metrics::batch_committed(name, messages, &report, started.elapsed());
                shared.status.committed(report);
                backoff.reset();
                return true;
            }
            Err(e) => {
                tracing::error!(projection = %name, partition = batch.partition(), error = %e,
                    "applying a batch failed; retrying it");
                metrics::batch_failed(name);
                shared.status.failed(e.to_string());
                if !backoff.pause(stop.cancelled()).await {
                    return false;
                }
            }
        }
    }
}

fn isolate(config: &RunnerConfig, attempts: u32) -> bool {
    config.poison != PoisonPolicy::Halt && attempts >= config.max_attempts
}

/// The error and its sources, joined, for the dead-letter record.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! The loop that applies one partition: read where the read model stands, subscribe right
//! after it, take a batch, apply it with its cursor in one transaction (retrying with
//! backoff), repeat. Any failure to receive opens a new subscription after the cursor
//! last committed, so nothing the loop took in and did not commit is lost or waited for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tidemark::EventStore;
use tokio_util::sync::CancellationToken;

use crate::config::{PoisonPolicy, RunnerConfig};
use crate::error::ProjectionError;
use crate::error::Result;
use crate::feed::{Delivery, Feed, FeedCursor, Subscription};
use crate::metrics;
use crate::projection::Projection;
use crate::read_models::ReadModels;
use crate::status::StatusCell;
use crate::worker::{Prepared, Worker};

/// Everything one partition loop shares with the runner.
#[derive(Debug)]
pub(crate) struct Shared<P, R, S, F> {
    pub worker: Worker<P, R, S>,
    pub feed: F,
    pub config: RunnerConfig,
    pub consumer: String,
    pub status: StatusCell,
}

/// Retry delays of a partition loop.
type Delays = Box<dyn Iterator<Item = Duration> + Send>;

/// Delays from `min` doubling to `max`, with jitter, never running out.
fn delays(config: &RunnerConfig) -> Delays {
    let max = config.max_backoff;
    let builder = ExponentialBuilder::new()
        .with_min_delay(config.min_backoff)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times();
    Box::new(builder.build().chain(std::iter::repeat(max)))
}

/// Sleeps unless `stop` fires first; false when stopped.
async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Applies `partition` until `stop` fires. Failures are logged and retried with backoff.
pub(crate) async fn run_partition<P, R, S, F>(shared: Arc<Shared<P, R, S, F>>, partition: u32, stop: CancellationToken)
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let name = &shared.worker.name;
    let mut backoff = delays(&shared.config);
    'subscribe: while !stop.is_cancelled() {
        let subscribed = tokio::select! {
            () = stop.cancelled() => return,
            s = subscribe(&shared, partition) => s,
        };
        let mut subscription = match subscribed {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(projection = %name, partition, error = %e, "subscribing failed; retrying");
                shared.status.failed(e.to_string());
                if pause(backoff.next().unwrap_or(shared.config.max_backoff), &stop).await {
                    continue;
                }
                return;
            }
        };
        // The next batch, when it had arrived already, taken in and checked against the
        // store while the one before it was applied.
        let mut ahead: Option<Taken> = None;
        // Whether the next wait on an idle partition begins its batch's transaction early:
        // not after a wait that outlasted `begin_early_for` (batches come rarely).
        let early_for = shared.config.begin_early_for;
        let mut early = !early_for.is_zero();
        loop {
            let mut begun = None;
            let Taken { batch, prepared } = match ahead.take() {
                Some(taken) => taken,
                None => {
                    let next = if early && shared.worker.begins_early() {
                        let Some(waited) = next_beginning_early(&shared, &mut subscription, partition, &stop).await
                        else {
                            return;
                        };
                        (begun, early) = (waited.tx, !waited.outlasted);
                        waited.next
                    } else {
                        let started = Instant::now();
                        let next = tokio::select! {
                            () = stop.cancelled() => return,
                            next = subscription.next_batch(shared.config.batch_size) => next,
                        };
                        early = started.elapsed() < early_for;
                        next
                    };
                    match next {
                        // Checked against the store while its transaction begins (unless
                        // it has begun already).
                        Ok(batch) => Taken { batch, prepared: None },
                        Err(e) => {
                            if let Some(tx) = begun.take() {
                                let _ = shared.worker.release(tx).await;
                            }
                            tracing::warn!(projection = %name, partition, error = %e, "receiving failed; subscribing again");
                            shared.status.failed(e.to_string());
                            if pause(backoff.next().unwrap_or(shared.config.max_backoff), &stop).await {
                                continue 'subscribe;
                            }
                            return;
                        }
                    }
                }
            };
            let (applied, busy) = tokio::sync::oneshot::channel::<()>();
            let applying = async {
                let committed =
                    apply_until_committed(&shared, partition, &batch, prepared, begun, &mut backoff, &stop).await;
                let _ = applied.send(());
                committed
            };
            let taking_next = async {
                let busy = async {
                    let _ = busy.await;
                };
                match subscription.next_batch_while(shared.config.batch_size, busy).await? {
                    // A full batch came in while the one before it was applied: it is checked
                    // now, likely still in that time. A batch that ends because the one before
                    // it committed is checked while its own transaction begins, as a batch
                    // taken in on an idle partition is: checking it here would add a round
                    // trip before that.
                    Ok(batch) if batch.len() >= shared.config.batch_size => {
                        let prepared = Some(shared.worker.prepare(partition, &batch.messages).await);
                        Some(Ok(Taken { batch, prepared }))
                    }
                    Ok(batch) => Some(Ok(Taken { batch, prepared: None })),
                    Err(e) => Some(Err(e)),
                }
            };
            let (committed, next) = tokio::join!(applying, taking_next);
            if !committed {
                return;
            }
            if let Some(cursor) = batch.last_cursor() {
                subscription.committed(cursor).await;
            }
            match next {
                Some(Ok(taken)) => ahead = Some(taken),
                Some(Err(e)) => {
                    tracing::warn!(projection = %name, partition, error = %e, "receiving failed; subscribing again");
                    shared.status.failed(e.to_string());
                    if pause(backoff.next().unwrap_or(shared.config.max_backoff), &stop).await {
                        continue 'subscribe;
                    }
                    return;
                }
                None => {}
            }
        }
    }
}

/// Reads the cursor the read model recorded for `partition` and opens a subscription
/// right after it.
async fn subscribe<P, R, S, F>(shared: &Shared<P, R, S, F>, partition: u32) -> Result<F::Subscription>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let after: Option<FeedCursor> = shared.worker.cursor(partition).await?;
    shared.feed.subscribe(&shared.consumer, partition, after).await
}

/// What a wait for the next batch that began its transaction early brought.
struct BegunEarly<T, B> {
    next: Result<B>,
    /// The transaction, unless it failed to begin or waited too long.
    tx: Option<T>,
    /// Whether the batch took longer than `begin_early_for` to come.
    outlasted: bool,
}

/// Waits for the next batch of an idle partition while its transaction begins, so the
/// batch does not wait for `BEGIN` and its locks. None when `stop` fired first.
async fn next_beginning_early<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    subscription: &mut F::Subscription,
    partition: u32,
    stop: &CancellationToken,
) -> Option<BegunEarly<R::Tx, Delivery>>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let worker = &shared.worker;
    let next = subscription.next_batch(shared.config.batch_size);
    tokio::pin!(next);
    let begin = worker.begin_early(partition);
    tokio::pin!(begin);
    let began = tokio::select! {
        () = stop.cancelled() => return None,
        next = &mut next => {
            // The batch came first; its transaction is on its way, further along than
            // one begun now would be. If it fails, the batch begins another.
            let tx = tokio::select! {
                () = stop.cancelled() => return None,
                began = &mut begin => began.ok(),
            };
            return Some(BegunEarly { next, tx, outlasted: false });
        }
        began = &mut begin => began,
    };
    let tx = match began {
        Ok(tx) => tx,
        Err(e) => {
            tracing::debug!(projection = %worker.name, partition, error = %e, "beginning a batch early failed");
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = &mut next => next,
            };
            return Some(BegunEarly { next, tx: None, outlasted: true });
        }
    };
    tokio::select! {
        () = stop.cancelled() => {
            let _ = worker.release(tx).await;
            None
        }
        next = &mut next => Some(BegunEarly { next, tx: Some(tx), outlasted: false }),
        () = tokio::time::sleep(shared.config.begin_early_for) => {
            if let Err(e) = worker.release(tx).await {
                tracing::debug!(projection = %worker.name, partition, error = %e, "ending an unused batch transaction failed");
            }
            let next = tokio::select! {
                () = stop.cancelled() => return None,
                next = &mut next => next,
            };
            Some(BegunEarly { next, tx: None, outlasted: true })
        }
    }
}

/// A batch taken in, with its check against the store (or why that failed) when that
/// was done ahead of its transaction.
struct Taken {
    batch: Delivery,
    prepared: Option<Result<Prepared>>,
}

/// Applies a batch until it commits, retrying with backoff and, for a batch that keeps
/// failing on an event, applying it event by event (unless the policy halts). False when
/// `stop` fired first.
async fn apply_until_committed<P, R, S, F>(
    shared: &Shared<P, R, S, F>,
    partition: u32,
    batch: &Delivery,
    mut prepared: Option<Result<Prepared>>,
    mut begun: Option<R::Tx>,
    backoff: &mut Delays,
    stop: &CancellationToken,
) -> bool
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let name = &shared.worker.name;
    let mut attempts = 0u32;
    let started = std::time::Instant::now();
    let (messages, cursor) = (&batch.messages[..], batch.last_cursor());
    loop {
        attempts += 1;
        let attempt = match (prepared.take(), begun.take()) {
            (Some(Ok(ready)), None) => shared.worker.apply_prepared(partition, messages, cursor, ready).await,
            (Some(Err(e)), None) => Err(e),
            (None, None) => shared.worker.apply_batch(partition, messages, cursor).await,
            // A batch that waited on an idle partition: never checked ahead.
            (_, Some(tx)) => shared.worker.apply_begun(tx, partition, messages, cursor).await,
        };
        let result = match attempt {
            Err(e @ ProjectionError::Apply { .. }) if isolate(&shared.config, attempts) => {
                tracing::warn!(projection = %name, partition, error = %e, "a batch keeps failing: applying its events one by one");
                shared.worker.isolated(partition, messages, &batch.cursors, shared.config.poison).await
            }
            other => other,
        };
        match result {
            Ok(report) => {
                metrics::batch_committed(name, messages, &report, started.elapsed());
                shared.status.committed(report);
                *backoff = delays(&shared.config);
                return true;
            }
            Err(e) => {
                tracing::error!(projection = %name, partition, error = %e, "applying a batch failed; retrying it");
                metrics::batch_failed(name);
                shared.status.failed(e.to_string());
                if !pause(backoff.next().unwrap_or(shared.config.max_backoff), stop).await {
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

//! The loop that applies one partition: subscribe, take a batch, apply it in one
//! transaction (retrying with backoff), acknowledge it, repeat.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tidemark::EventStore;
use tokio_util::sync::CancellationToken;

use crate::config::{PoisonPolicy, RunnerConfig};
use crate::error::ProjectionError;
use crate::feed::{Feed, Subscription};
use crate::metrics;
use crate::projection::Projection;
use crate::read_models::ReadModels;
use crate::status::StatusCell;
use crate::worker::Worker;

/// Everything one partition loop shares with the runner.
#[derive(Debug)]
pub(crate) struct Shared<P, R, S, F> {
    pub worker: Worker<P, R, S>,
    pub feed: F,
    pub config: RunnerConfig,
    pub consumer: String,
    pub status: StatusCell,
}

/// Delays from `min` doubling to `max`, with jitter, never running out.
fn delays(config: &RunnerConfig) -> impl Iterator<Item = Duration> {
    let max = config.max_backoff;
    let builder = ExponentialBuilder::new()
        .with_min_delay(config.min_backoff)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times();
    builder.build().chain(std::iter::repeat(max))
}

/// Sleeps unless `stop` fires first; false when stopped.
async fn pause(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Applies `partition` until `stop` fires. Failures are logged and retried with backoff;
/// nothing is acknowledged before its batch has committed.
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
            s = shared.feed.subscribe(&shared.consumer, partition) => s,
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
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = subscription.next_batch(shared.config.batch_size) => next,
            };
            let (batch, receipt) = match next {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(projection = %name, partition, error = %e, "receiving failed; subscribing again");
                    shared.status.failed(e.to_string());
                    if pause(backoff.next().unwrap_or(shared.config.max_backoff), &stop).await {
                        continue 'subscribe;
                    }
                    return;
                }
            };
            let mut attempts = 0u32;
            let started = std::time::Instant::now();
            loop {
                attempts += 1;
                let result = match shared.worker.apply_batch(partition, &batch).await {
                    Err(e @ ProjectionError::Apply { .. }) if isolate(&shared.config, attempts) => {
                        tracing::warn!(projection = %name, partition, error = %e, "a batch keeps failing: applying its events one by one");
                        shared.worker.isolated(partition, &batch, shared.config.poison).await
                    }
                    other => other,
                };
                match result {
                    Ok(report) => {
                        metrics::batch_committed(name, partition, &batch, &report, started.elapsed());
                        shared.status.committed(report);
                        backoff = delays(&shared.config);
                        break;
                    }
                    Err(e) => {
                        tracing::error!(projection = %name, partition, error = %e, "applying a batch failed; retrying it");
                        metrics::batch_failed(name);
                        shared.status.failed(e.to_string());
                        if !pause(backoff.next().unwrap_or(shared.config.max_backoff), &stop).await {
                            return;
                        }
                    }
                }
            }
            if let Err(e) = subscription.ack(receipt).await {
                // The batch is committed: a redelivery will be recognised and skipped.
                tracing::warn!(projection = %name, partition, error = %e, "acknowledging failed; expecting a redelivery");
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

//! F4's baselines, hand-written with async-nats and sqlx: pull consumers (one per partition,
//! filtered on the relay's partition subjects) that
//!
//! - `raw-upsert`: gather a batch as the runner does (up to `batch` messages, waiting
//!   `linger` for each after the first), read stream id, version and type from the headers
//!   and the amount from the payload, write the batch with the read model's upsert in
//!   `BEGIN … COMMIT`, then ack each message (a durable consumer, explicit acks);
//! - `raw-upsert-noack`: the same on an ephemeral consumer without acks, the way the runner
//!   consumes (it keeps its place in the read model's database);
//! - `raw-pull` / `raw-pull-noack`: take each message as it arrives (acking it, or not),
//!   nothing else.
//!
//! No idempotence: a redelivery would be counted twice (the framework checks stream versions).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::consumer::pull::Config;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::{Context, Message};
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use tidemark_nats::{HEADER_EVENT_TYPE, HEADER_STREAM_ID, HEADER_STREAM_VERSION};
use tokio_util::sync::CancellationToken;

use crate::read_model::Rows;

/// A pull consumer's message stream.
pub(crate) type Messages = async_nats::jetstream::consumer::pull::Stream;

/// How batches are pulled and gathered (the same for the runner and the baselines).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Most messages per transaction (the runner's `batch_size`).
    pub batch: usize,
    /// Messages requested per pull (`ConsumerSettings::pull_batch`).
    pub pull_batch: usize,
    /// Wait for each further message of a batch (`ConsumerSettings::linger`).
    pub linger: Duration,
}

/// Counts shared by a baseline's partition tasks.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Messages done (committed, or acked by `raw-pull`).
    pub events: AtomicU64,
    pub batches: AtomicU64,
}

/// With `acks`, a durable pull consumer `durable` on `filter` with explicit acks (30 s ack
/// wait, 20,000 acks pending); without, an ephemeral consumer without acks, as the runner's
/// (which keeps its place in the read model). Both with the runner's pull stream settings.
pub(crate) async fn subscribe(
    js: &Context,
    stream: &str,
    durable: &str,
    filter: String,
    tuning: Tuning,
    acks: bool,
) -> Result<Messages> {
    let config = if acks {
        Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: filter,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            ..Config::default()
        }
    } else {
        Config {
            filter_subject: filter,
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            num_replicas: 1,
            memory_storage: true,
            ..Config::default()
        }
    };
    let stream = js.get_stream(stream).await.context("looking up the stream")?;
    let consumer = stream.create_consumer(config).await.context("creating a consumer")?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(tuning.pull_batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .context("pulling")?;
    Ok(messages)
}

async fn next(messages: &mut Messages) -> Result<Message> {
    match messages.next().await {
        Some(message) => Ok(message.context("pulling a message")?),
        None => anyhow::bail!("the message stream ended"),
    }
}

/// `raw-upsert` (`acks`) or `raw-upsert-noack` on one partition until `stop`.
pub(crate) async fn upsert_loop(
    mut messages: Messages,
    pool: PgPool,
    sql: Arc<str>,
    tuning: Tuning,
    acks: bool,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Result<()> {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            first = next(&mut messages) => first?,
        };
        let mut batch = vec![first];
        while batch.len() < tuning.batch {
            match tokio::time::timeout(tuning.linger, next(&mut messages)).await {
                Ok(message) => batch.push(message?),
                Err(_) => break,
            }
        }
        let mut rows = Rows::default();
        for message in &batch {
            let (stream, version, amount) = read(message)?;
            rows.add(stream, version, amount);
        }
        let mut tx = pool.begin().await?;
        rows.upsert(&sql, &mut *tx).await?;
        tx.commit().await?;
        progress.events.fetch_add(batch.len() as u64, Ordering::Relaxed);
        progress.batches.fetch_add(1, Ordering::Relaxed);
        if acks {
            for message in batch {
                message.ack().await.map_err(|e| anyhow::anyhow!("acking: {e}"))?;
            }
        }
    }
}

/// `raw-pull` (`acks`) or `raw-pull-noack` on one partition until `stop`.
pub(crate) async fn pull_loop(
    mut messages: Messages,
    acks: bool,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Result<()> {
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            message = next(&mut messages) => message?,
        };
        if acks {
            message.ack().await.map_err(|e| anyhow::anyhow!("acking: {e}"))?;
        }
        progress.events.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
struct Amount {
    amount_cents: i64,
}

/// (stream id, stream version, signed amount) of a message the relay published.
fn read(message: &Message) -> Result<(&str, u64, i64)> {
    let headers = message.headers.as_ref().context("a message without headers")?;
    let header = |name: &str| headers.get(name).map(|v| v.as_str()).with_context(|| format!("no {name} header"));
    let stream = header(HEADER_STREAM_ID)?;
    let version = header(HEADER_STREAM_VERSION)?.parse().context("a stream version")?;
    let amount = match header(HEADER_EVENT_TYPE)? {
        "MoneyDeposited" => serde_json::from_slice::<Amount>(&message.payload)?.amount_cents,
        "MoneyWithdrawn" => -serde_json::from_slice::<Amount>(&message.payload)?.amount_cents,
        _ => 0,
    };
    Ok((stream, version, amount))
}

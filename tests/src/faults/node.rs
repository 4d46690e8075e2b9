//! The roles of the `fault-node` binary. Each runs until SIGINT/SIGTERM (a clean stop) or
//! SIGKILL (a crash, which is the point); none needs anything but its environment.
//!
//! - `relay`: publishes the log to JetStream (several may run: one leads);
//! - `runner`: runs the ledger projection on the partitions it wins, fed by JetStream or,
//!   with `FAULT_FEED=postgres`, by the store's log (no NATS);
//! - `load`: appends credits to many streams from concurrent writers (a tenth of the appends
//!   to new streams that get nothing more), plus a few injected poison events; on a clean stop
//!   it writes a summary to `FAULT_LOAD_SUMMARY`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tidemark::{AppendRequest, CommandId, EventStore, ExpectedVersion, StreamId};
use tidemark_projections_postgres::Coordination;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::deployment::{DeploymentError, FaultConfig, FaultFeed};
use super::ledger::{credits, poison};

/// What a load generator did, written when it stops cleanly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// Appends that committed.
    pub appended: u64,
    /// Appends that failed with an error the store calls retryable (PostgreSQL away).
    pub retryable_errors: u64,
    /// Appends that failed with any other error: always a defect in these tests.
    pub other_errors: u64,
    /// The first few messages of the other errors.
    pub other_messages: Vec<String>,
}

/// Runs the role named by the first argument. Exit codes: 0 after a clean stop, 1 on an error,
/// 2 for a usage error.
pub async fn main_with(role: Option<String>) -> i32 {
    let result = match role.as_deref() {
        Some("relay") => relay().await,
        Some("runner") => runner().await,
        Some("load") => load().await,
        _ => {
            eprintln!("usage: fault-node relay|runner|load (settings from FAULT_* variables)");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fault-node: {e}");
            1
        }
    }
}

/// A token cancelled by SIGINT or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                eprintln!("fault-node: cannot watch SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        cancel.cancel();
    });
    token
}

/// Tries `attempt` until it succeeds or `shutdown` is cancelled, 200 ms apart: start-up
/// must survive servers that are away.
async fn until_ok<T, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DeploymentError>>,
{
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(e) => eprintln!("fault-node: {what}: {e}; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

async fn relay() -> Result<(), DeploymentError> {
    let config = FaultConfig::from_env()?;
    let shutdown = shutdown_on_signal();
    let Some(store) = until_ok("connecting to PostgreSQL", &shutdown, || config.store(4)).await else {
        return Ok(());
    };
    let client = config.nats().await?;
    let relay = config.relay(store, client)?;
    let settings = config.stream_settings();
    let ensured = until_ok("creating the stream", &shutdown, || async {
        relay.ensure_stream(&settings).await.map_err(|e| DeploymentError::Nats(e.to_string()))
    })
    .await;
    if ensured.is_none() {
        return Ok(());
    }
    relay.run(shutdown).await.map_err(|e| DeploymentError::Nats(e.to_string()))
}

async fn runner() -> Result<(), DeploymentError> {
    let config = FaultConfig::from_env()?;
    let shutdown = shutdown_on_signal();
    let Some(store) = until_ok("connecting to PostgreSQL", &shutdown, || config.store(8)).await else {
        return Ok(());
    };
    let coordination = Coordination::postgres(store.pool().clone(), &config.schema);
    match config.feed {
        FaultFeed::JetStream => {
            let client = config.nats().await?;
            let runner = config.runner(store.clone(), client)?;
            Ok(runner.run_shared(coordination, shutdown).await?)
        }
        FaultFeed::Postgres => Ok(config.pg_runner(store)?.run_shared(coordination, shutdown).await?),
    }
}

/// Load settings: `FAULT_LOAD_SEED`, `FAULT_LOAD_STREAMS` (64), `FAULT_LOAD_WRITERS` (8),
/// `FAULT_LOAD_POISON` (poison streams to create, 1), `FAULT_LOAD_PAUSE_MS` (each writer's
/// pause between appends, 0: as fast as it can), `FAULT_LOAD_SUMMARY` (a file path).
async fn load() -> Result<(), DeploymentError> {
    let config = FaultConfig::from_env()?;
    let number = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seed = number("FAULT_LOAD_SEED", 0);
    let streams = number("FAULT_LOAD_STREAMS", 64).max(1);
    let writers = number("FAULT_LOAD_WRITERS", 8).max(1);
    let poison_streams = number("FAULT_LOAD_POISON", 1);
    let pause = Duration::from_millis(number("FAULT_LOAD_PAUSE_MS", 0));
    let summary_path = std::env::var("FAULT_LOAD_SUMMARY").ok();
    let shutdown = shutdown_on_signal();
    let Some(store) = until_ok("connecting to PostgreSQL", &shutdown, || config.store(writers as u32 + 2)).await else {
        return Ok(());
    };
    let counts = Arc::new(Counters::default());

    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let (store, counts, shutdown) = (store.clone(), counts.clone(), shutdown.clone());
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(writer));
        let poison_here = if writer == 0 { poison_streams } else { 0 };
        tasks.spawn(async move {
            // A poison stream: a credit, the poison event, then credits that must park with it.
            for _ in 0..poison_here {
                let Ok(stream) = StreamId::new(format!("poison-{}", Uuid::new_v4().simple())) else { continue };
                for events in [credits(1, 1), poison(), credits(2, 1)] {
                    append(&store, &stream, events, &counts, &shutdown).await;
                }
            }
            while !shutdown.is_cancelled() {
                // One append in ten starts a stream that never gets another event: nothing
                // later would reveal (and repair) a loss of its only events.
                let stream = if rng.gen_ratio(1, 10) {
                    StreamId::new(format!("once-{}", Uuid::new_v4().simple()))
                } else {
                    StreamId::for_entity("acct", rng.gen_range(0..streams))
                };
                let Ok(stream) = stream else { continue };
                let events = credits(rng.gen_range(1..=3), rng.gen_range(1..100));
                append(&store, &stream, events, &counts, &shutdown).await;
                if !pause.is_zero() {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}

    let summary = counts.summary();
    if let Some(path) = summary_path {
        let json = serde_json::to_string(&summary).map_err(|e| DeploymentError::Config(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| DeploymentError::Config(format!("{path}: {e}")))?;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counters {
    appended: AtomicU64,
    retryable: AtomicU64,
    other: AtomicU64,
    messages: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn summary(&self) -> LoadSummary {
        LoadSummary {
            appended: self.appended.load(Ordering::Relaxed),
            retryable_errors: self.retryable.load(Ordering::Relaxed),
            other_errors: self.other.load(Ordering::Relaxed),
            other_messages: self.messages.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }
}

/// One append under a command id; a retryable failure is counted and tried again (after
/// 50 ms) with the same command id until it commits or the load stops, as a well-behaved
/// client would: an append whose commit went through before the connection broke is not
/// appended twice.
async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    events: Vec<tidemark::NewEvent>,
    counts: &Counters,
    shutdown: &CancellationToken,
) {
    let command = CommandId::new();
    loop {
        let request = AppendRequest::new(stream.clone(), ExpectedVersion::Any, events.clone()).with_command_id(command);
        match store.append(request).await {
            Ok(_) => {
                counts.appended.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) if e.is_retryable() => {
                counts.retryable.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counts.other.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut messages) = counts.messages.lock() {
                    if messages.len() < 5 {
                        messages.push(e.to_string());
                    }
                }
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

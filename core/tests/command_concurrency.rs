//! Commands racing on one stream: conflict retries give every command its own version.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidemark::{
    AppendOutcome, AppendRequest, CommandError, CommandHandler, CommandId, Error, EventStore, HandlerConfig,
    InMemoryEventStore, LogPosition, RecordedEvent, Result, Snapshot, StreamId, StreamVersion,
};

mod support;
use support::*;

#[derive(Debug, Clone, Default)]
struct Interleaving {
    inner: InMemoryEventStore,
    conflicts: Arc<AtomicU64>,
}

impl EventStore for Interleaving {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        tokio::task::yield_now().await;
        let result = self.inner.append(request).await;
        if let Err(Error::Conflict { .. }) = result {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
    async fn read_stream(&self, id: &StreamId, from: StreamVersion, limit: usize) -> Result<Vec<RecordedEvent>> {
        tokio::task::yield_now().await;
        self.inner.read_stream(id, from, limit).await
    }
    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>> {
        self.inner.read_log(after, limit).await
    }
    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool> {
        self.inner.wait_for_log(after, timeout).await
    }
    async fn stream_version(&self, id: &StreamId) -> Result<StreamVersion> {
        self.inner.stream_version(id).await
    }
    async fn log_head(&self) -> Result<Option<LogPosition>> {
        self.inner.log_head().await
    }
    async fn command_outcome(&self, id: CommandId) -> Result<Option<AppendOutcome>> {
        self.inner.command_outcome(id).await
    }
    async fn load_snapshot(&self, id: &StreamId) -> Result<Option<Snapshot>> {
        self.inner.load_snapshot(id).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
}

/// Runs `tasks` concurrent credits of 1..=tasks cents on one open wallet.
async fn race_credits(
    retries: u32,
    tasks: i64,
) -> (Arc<Handler<Interleaving>>, StreamId, Vec<Result<AppendOutcome, CommandError<WalletError>>>) {
    let mut config = HandlerConfig::default();
    config.conflict_retries = retries;
    let h = Arc::new(CommandHandler::new(Interleaving::default(), codec()).with_config(config));
    let id = wallet();
    h.handle(&id, &open(0), &no_options()).await.unwrap();
    let spawned: Vec<_> = (1..=tasks)
        .map(|cents| {
            let (h, id) = (h.clone(), id.clone());
            tokio::spawn(async move { h.handle(&id, &WalletCommand::Credit(cents), &no_options()).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in spawned {
        results.push(task.await.unwrap());
    }
    (h, id, results)
}

#[tokio::test]
async fn concurrent_commands_on_one_stream_all_succeed_with_distinct_versions() {
    let tasks = 20;
    let (h, id, results) = race_credits(64, tasks).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.expect("retried until accepted")).collect();
    let versions: BTreeSet<u64> = outcomes.iter().map(|o| o.version.0).collect();
    assert_eq!(versions, (2..=tasks as u64 + 1).collect(), "one distinct version per command");
    assert!(outcomes.iter().all(|o| o.previous_version.0 + 1 == o.version.0));
    assert!(h.store().conflicts.load(Ordering::Relaxed) > 0, "the tasks did race");
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.version.0, loaded.state.balance), (tasks as u64 + 1, tasks * (tasks + 1) / 2));
}

#[tokio::test]
async fn without_retries_racing_commands_fail_with_a_conflict() {
    let (h, id, results) = race_credits(0, 10).await;
    let conflicts = results.iter().filter(|r| matches!(r, Err(CommandError::Store(Error::Conflict { .. })))).count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(conflicts > 0, "a lost race is reported when retries are off");
    assert_eq!(conflicts + accepted, 10);
    assert_eq!(h.store().stream_version(&id).await.unwrap().0, 1 + accepted as u64);
}

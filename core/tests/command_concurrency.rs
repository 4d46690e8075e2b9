//! Commands racing on one stream: conflict retries give every command its own version.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tidemark::{AppendOutcome, CommandError, CommandHandler, Error, EventStore, HandlerConfig, Result, StreamId};

mod support;
use support::*;

/// Runs `tasks` concurrent credits of 1..=tasks cents on one open wallet.
async fn race_credits(
    retries: u32,
    tasks: i64,
) -> (Arc<Handler<Observed>>, StreamId, Vec<Result<AppendOutcome, CommandError<WalletError>>>) {
    let mut config = HandlerConfig::default();
    config.conflict_retries = retries;
    let h = Arc::new(CommandHandler::new(Observed::interleaving(), codec()).with_config(config));
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

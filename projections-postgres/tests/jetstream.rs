//! The runner fed by the relay's JetStream stream, on PostgreSQL: every event applied
//! once and in order, thin notifications read from the store, rogue messages skipped,
//! redeliveries after a crash between commit and ack and relay republishes skipped.

mod support;

use std::time::Duration;

use async_nats::HeaderMap;
use tidemark::{EventStore, LogPosition};
use tidemark_nats::{Downcaster, RelayConfig};

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{append_rounds, read_log, replay, tallies, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_runner_build_the_read_model_of_a_replay() {
    let bench = Bench::new(4).await;
    // Thin `Withdrawn` notifications, and `Noted` v2 published a second time as v1 for
    // older consumers: the runner reads the former from the store and passes the copies over.
    let until = chrono::Utc::now() + chrono::Duration::days(1);
    let downcast = Downcaster::new("Noted", 2, 1, until, Ok);
    let relay = bench.relay(RelayConfig::new("main").thin("Withdrawn").downcast(downcast)).await;
    // A message on a partition subject that no relay published.
    let rogue = format!("{}.0.account.Deposited.v1", bench.scheme.prefix());
    bench
        .jetstream()
        .publish_with_headers(rogue, HeaderMap::new(), "{}".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    append_rounds(&bench.store, 12, 2, 5).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let runner = bench.runner("tally", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let outcomes = append_rounds_more(&bench, 12, 5).await;

    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    assert_eq!(tallies(&bench.read_models, runner.projection()).await, replay(&log));
    let status = runner.status();
    assert_eq!(status.totals.applied + status.totals.skipped, log.len() as u64, "{status:?}");
    assert_eq!((status.totals.duplicates, status.totals.repaired, status.totals.rogue), (0, 0, 1), "{status:?}");
    assert_eq!(status.partitions.len(), 4);
    assert!(relay.status().downcasts > 0, "copies were published");

    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

/// A third round of appends to the same streams, while everything runs.
async fn append_rounds_more(bench: &Bench, streams: usize, per_append: usize) -> Vec<tidemark::AppendOutcome> {
    let mut outcomes = Vec::new();
    for n in 0..streams {
        let events = support::events(n, 10, per_append);
        let request = tidemark::AppendRequest::new(support::stream(n), tidemark::ExpectedVersion::StreamExists, events);
        outcomes.push(bench.store.append(request).await.expect("append"));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_fed_everything_again_applies_nothing_twice() {
    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let outcomes = append_rounds(&bench.store, 10, 3, 4).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);

    let first = bench.runner("again", bench.feed()).await;
    let (_, first_task) = spawn_runner(&first);
    for outcome in &outcomes {
        first.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    first_task.abort();
    let _ = first_task.await;
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    assert_eq!(first.status().totals.applied + first.status().totals.skipped, log.len() as u64);

    // A subscription that ignores the recorded cursor (as if it were lost) delivers
    // everything again to the next runner.
    let second = bench.runner("again", support::nats::FromStart(bench.feed())).await;
    let (stop_second, second_task) = spawn_runner(&second);
    wait_until("every message is redelivered and skipped", || async {
        second.status().totals.duplicates == log.len() as u64
    })
    .await;
    assert_eq!(tallies(&bench.read_models, second.projection()).await, replay(&log));
    assert_eq!(second.status().totals.applied, 0);

    stop_second.cancel();
    second_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_republishing_the_whole_log_changes_no_read_model() {
    let mut bench = Bench::new(2).await;
    // A short duplicate window, so the server does not absorb the republished events.
    bench.settings = bench.settings.clone().duplicate_window(Duration::from_millis(100));
    let relay = bench.relay(RelayConfig::new("main")).await;
    let outcomes = append_rounds(&bench.store, 10, 3, 4).await;
    let runner = bench.runner("republish", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let (stop_relay, relay_task) = spawn_relay(&relay);
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;

    // The server forgets message ids after the duplicate window: that condition is time
    // itself, so wait it out (twice over).
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The relay "crashed" before saving any checkpoint: it publishes everything again.
    bench.store.set_checkpoint("relay:main", LogPosition::START).await.expect("rewind");
    let again = bench.relay(RelayConfig::new("main")).await;
    let (stop_again, again_task) = spawn_relay(&again);
    wait_until("the relay has republished the log", || async { again.status().last_acked >= Some(head) }).await;
    let republished = log.len() as u64 - again.status().duplicates;
    assert!(republished > 0, "the server took republished events in");
    wait_until("the runner has skipped every republished event", || async {
        runner.status().totals.duplicates == republished
    })
    .await;
    assert_eq!(tallies(&bench.read_models, runner.projection()).await, replay(&log));

    stop_again.cancel();
    again_task.await.expect("joined").expect("clean stop");
    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

//! A poison event parks its stream (with every later event of it) while other streams
//! keep flowing; a retry after the fix drains the stream in order; a skip is recorded.

mod support;

use tidemark::{AppendRequest, EventStore, ExpectedVersion, InMemoryEventStore, LogPosition, StreamVersion};
use tidemark_projections::{
    DeadLetterStatus, InProcessBus, Incoming, MemoryReadModels, PoisonPolicy, ProjectionRunner,
};
use tokio_util::sync::CancellationToken;

use support::fragile::{config, deposit, orders, traffic, Fragile, UNLUCKY};
use support::scripted::Scripted;
use support::{events, read_log, replay, stream, tallies};

async fn setup(
    policy: PoisonPolicy,
) -> (
    InMemoryEventStore,
    MemoryReadModels,
    ProjectionRunner<Fragile, MemoryReadModels, InMemoryEventStore, InProcessBus>,
    CancellationToken,
) {
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(2).expect("bus");
    let read_models = MemoryReadModels::new();
    let projection = Fragile::new("fragile", true);
    let config = config(policy);
    let runner =
        ProjectionRunner::new(projection, read_models.clone(), store.clone(), bus.clone(), config).expect("runner");
    runner.set_up().await.expect("set up");
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), shutdown.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });
    (store, read_models, runner, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_parks_its_stream_while_others_flow_and_a_retry_drains_it_in_order() {
    let (store, read_models, runner, shutdown) = setup(PoisonPolicy::Park).await;
    let outcomes = traffic(&store).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("taken in");
    }
    let letters = runner.dead_letters().await.expect("dead letters");
    let versions: Vec<u64> = letters.iter().map(|l| l.stream_version.0).collect();
    assert_eq!(versions, vec![3, 4, 5, 6], "the poison event and everything after it: {letters:?}");
    assert!(letters.iter().all(|l| l.status == DeadLetterStatus::Parked && l.stream_id == stream(99)));
    assert!(letters[0].error.contains("unlucky amount"), "{}", letters[0].error);
    let head = store.log_head().await.expect("head").expect("events");
    let log = read_log(&store, head).await;
    let mut expected = replay(&log);
    let healthy = tallies(&read_models, &runner.projection().inner).await;
    let sick = expected.remove(stream(99).as_str()).expect("stream 99");
    let parked_tally = healthy.get(stream(99).as_str()).copied().expect("applied before the poison");
    assert_eq!(parked_tally.version, 2, "nothing of stream 99 after the poison event was applied");
    let others: std::collections::BTreeMap<_, _> =
        healthy.into_iter().filter(|(k, _)| k != stream(99).as_str()).collect();
    assert_eq!(others, expected, "the other streams flowed");

    // Retrying before the fix changes nothing.
    assert!(runner.retry_parked(&stream(99)).await.is_err());
    assert_eq!(runner.dead_letters().await.expect("dead letters").len(), 4);
    runner.projection().fix();
    // Four parked events; one is a `Noted` the projection does not handle.
    assert_eq!(runner.retry_parked(&stream(99)).await.expect("retried"), 3);
    assert!(runner.dead_letters().await.expect("dead letters").is_empty());
    assert_eq!(tallies(&read_models, &runner.projection().inner).await[stream(99).as_str()], sick);
    // Applied in stream order: 1 and 2 before the poison, then 3, 4 and 6 (5 is the `Noted`).
    assert_eq!(orders(&read_models, runner.projection()).await[stream(99).as_str()], vec![1, 2, 3, 4, 6]);

    // The stream flows again.
    let next = AppendRequest::new(stream(99), ExpectedVersion::Exact(StreamVersion(6)), events(99, 6, 1));
    let outcome = store.append(next).await.expect("append");
    runner.wait_for_append(&outcome, support::DEADLINE).await.expect("taken in");
    assert!(runner.dead_letters().await.expect("dead letters").is_empty());
    assert_eq!(tallies(&read_models, &runner.projection().inner).await[stream(99).as_str()].version, 7);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_one_parked_stream_after_the_fix_restores_it_and_clears_its_dead_letters() {
    let (store, read_models, runner, shutdown) = setup(PoisonPolicy::Park).await;
    for outcome in &traffic(&store).await {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("taken in");
    }
    assert_eq!(runner.dead_letters().await.expect("dead letters").len(), 4);
    // Still broken: the rebuild fails and changes nothing.
    assert!(runner.rebuild_stream(&stream(99)).await.is_err());
    assert_eq!(runner.dead_letters().await.expect("dead letters").len(), 4);

    runner.projection().fix();
    let report = runner.rebuild_stream(&stream(99)).await.expect("rebuilt");
    assert_eq!(report.applied, 5, "every handled event of the stream, from version 1");
    assert!(runner.dead_letters().await.expect("dead letters").is_empty());
    let head = store.log_head().await.expect("head").expect("events");
    let expected = replay(&read_log(&store, head).await);
    assert_eq!(tallies(&read_models, &runner.projection().inner).await, expected);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skip_policy_records_the_poison_event_and_goes_on() {
    let (store, read_models, runner, shutdown) = setup(PoisonPolicy::Skip).await;
    let outcomes = traffic(&store).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("taken in");
    }
    let letters = runner.dead_letters().await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!((letters[0].stream_version.0, letters[0].status), (3, DeadLetterStatus::Skipped));
    let tally = tallies(&read_models, &runner.projection().inner).await[stream(99).as_str()];
    // Stream 99 holds 6 events: the poison one and a `Noted` are not in the tally.
    assert_eq!((tally.events, tally.version), (4, 6), "every event but the poison one was applied");
    shutdown.cancel();
}

/// The interleaving seen once in the PostgreSQL fault scenario: after the poison event
/// parks its stream, a later version of the stream arrives before the one between them
/// (another instance held that one, and it comes again). The version in between must be
/// parked too, not passed over as a duplicate when it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_delivered_after_a_later_one_of_a_parked_stream_is_parked_not_lost() {
    let store = InMemoryEventStore::new();
    let read_models = MemoryReadModels::new();
    let projection = Fragile::new("fragile", true);
    let config = config(PoisonPolicy::Park);
    let (feed, mut script) = Scripted::new();
    let runner = ProjectionRunner::new(projection, read_models.clone(), store.clone(), feed, config).expect("runner");
    runner.set_up().await.expect("set up");
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });

    // Stream 99: a deposit, the poison event, two more.
    let sick = stream(99);
    let first = AppendRequest::new(sick.clone(), ExpectedVersion::NoStream, events(99, 0, 1));
    store.append(first).await.expect("append");
    let request = AppendRequest::new(sick.clone(), ExpectedVersion::Exact(StreamVersion(1)), vec![deposit(UNLUCKY)]);
    store.append(request).await.expect("append");
    let rest = AppendRequest::new(sick.clone(), ExpectedVersion::Exact(StreamVersion(2)), events(99, 2, 2));
    store.append(rest).await.expect("append");
    let head = store.log_head().await.expect("head").expect("events");
    let log = read_log(&store, head).await;
    let version = |v: u64| {
        let event = log.iter().find(|e| e.stream_version == StreamVersion(v)).expect("in the log");
        Incoming::Untrusted(event.clone())
    };

    // Versions 1 and 2 (the poison), then 4, then 3: each batch acknowledged before the next.
    for (n, batch) in [vec![version(1), version(2)], vec![version(4)], vec![version(3)]].into_iter().enumerate() {
        assert_eq!(script.deliver(batch).await, n + 1, "batch {} acknowledged", n + 1);
    }

    let letters = runner.dead_letters().await.expect("dead letters");
    let versions: Vec<u64> = letters.iter().map(|l| l.stream_version.0).collect();
    assert_eq!(versions, vec![2, 3, 4], "the poison event and both versions after it: {letters:?}");
    let tally = tallies(&read_models, &runner.projection().inner).await[sick.as_str()];
    assert_eq!(tally.version, 1, "nothing after the poison event was applied");

    // After the fix, retrying the stream applies all three in order.
    runner.projection().fix();
    assert_eq!(runner.retry_parked(&sick).await.expect("retried"), 3);
    assert!(runner.dead_letters().await.expect("dead letters").is_empty());
    let expected = replay(&log);
    assert_eq!(tallies(&read_models, &runner.projection().inner).await[sick.as_str()], expected[sick.as_str()]);
    shutdown.cancel();
}

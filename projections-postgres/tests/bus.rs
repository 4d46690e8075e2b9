//! The runner on the in-process bus, with an in-memory store and in-memory read models:
//! the embedded mode's code path. Duplicate publishes, redeliveries and gaps leave the read
//! model equal to a fresh replay.

mod support;

use std::time::Duration;

use tidemark::{EventStore, InMemoryEventStore, LogPosition, StreamVersion};
use tidemark_projections::{
    BusFaults, InProcessBus, MemoryReadModels, ProjectionError, ProjectionRunner, RunnerConfig, VersionChange,
};
use tokio_util::sync::CancellationToken;

use support::{append_rounds, read_log, replay, tallies, TallyProjection};
use tidemark_projections::ReadModelsAdmin;

/// A runner whose read model is set up (so events appended before it starts reach it
/// through the bus, not through the initial build from the log).
async fn runner(
    name: &str,
    read_models: &MemoryReadModels,
    store: &InMemoryEventStore,
    bus: &InProcessBus,
) -> ProjectionRunner<TallyProjection, MemoryReadModels, InMemoryEventStore, InProcessBus> {
    let config = RunnerConfig::default().batch_size(7).backoff(Duration::from_millis(5), Duration::from_millis(50));
    let runner =
        ProjectionRunner::new(TallyProjection::new(name), read_models.clone(), store.clone(), bus.clone(), config)
            .expect("runner");
    runner.set_up().await.expect("set up");
    runner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_redeliveries_leave_the_read_model_equal_to_a_replay() {
    support::logs();
    let store = InMemoryEventStore::new();
    let faults = BusFaults::none().duplicate_every(3).redeliver_every(4);
    let bus = InProcessBus::with_faults(4, faults).expect("bus");
    let read_models = MemoryReadModels::new();
    let runner = runner("faulty", &read_models, &store, &bus).await;
    let shutdown = CancellationToken::new();
    let pump = tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), shutdown.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    let run = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });

    let outcomes = append_rounds(&store, 20, 5, 6).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let head = store.log_head().await.expect("head").expect("events");
    let log = read_log(&store, head).await;
    assert_eq!(tallies(&read_models, runner.projection()).await, replay(&log));
    let status = runner.status();
    assert!(bus.published() > log.len(), "the bus published duplicates");
    assert!(status.totals.duplicates > 0, "duplicates were delivered and skipped: {status:?}");
    assert_eq!(status.totals.applied + status.totals.skipped, log.len() as u64, "{status:?}");

    shutdown.cancel();
    run.await.expect("joined").expect("clean stop");
    pump.await.expect("joined").expect("pump");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_a_stream_is_repaired_from_the_store_never_applied_out_of_order() {
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(2).expect("bus");
    let read_models = MemoryReadModels::new();
    let runner = runner("gaps", &read_models, &store, &bus).await;
    append_rounds(&store, 3, 4, 3).await;
    let head = store.log_head().await.expect("head").expect("events");
    let log = read_log(&store, head).await;
    // The broker lost every event at versions 2 to 7: only the rest is published.
    for event in log.iter().filter(|e| !(2..=7).contains(&e.stream_version.0)) {
        bus.publish(event.clone());
    }
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });
    for n in 0..3 {
        runner.wait_for(&support::stream(n), StreamVersion(12), support::DEADLINE).await.expect("caught up");
    }
    assert_eq!(tallies(&read_models, runner.projection()).await, replay(&log));
    assert_eq!(runner.status().totals.repaired, 3 * 6, "six versions of three streams came from the store");
    shutdown.cancel();
    run.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_version_nobody_applies_times_out_with_a_typed_error() {
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(1).expect("bus");
    let read_models = MemoryReadModels::new();
    let runner = runner("idle", &read_models, &store, &bus).await;
    let outcome = append_rounds(&store, 1, 1, 2).await.remove(0);
    let waited = runner.wait_for_append(&outcome, Duration::from_millis(50)).await;
    assert!(matches!(waited, Err(ProjectionError::WaitTimedOut { version: StreamVersion(2), .. })), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_projection_version_refuses_to_run_when_so_configured() {
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(1).expect("bus");
    let read_models = MemoryReadModels::new();
    runner("versioned", &read_models, &store, &bus).await;
    let config = RunnerConfig::default().on_version_change(VersionChange::Refuse);
    let newer = TallyProjection::versioned("versioned", 2);
    let runner = ProjectionRunner::new(newer, read_models, store, bus, config).expect("runner");
    let result = runner.run(CancellationToken::new()).await;
    assert!(matches!(result, Err(ProjectionError::VersionChanged { stored: 1, current: 2, .. })), "{result:?}");
}

#[test]
fn invalid_projection_names_are_rejected() {
    let bus = InProcessBus::new(1).expect("bus");
    for name in ["", "has.dot", "star*", "a b", &"x".repeat(65)] {
        let projection = TallyProjection::new(name);
        let made = ProjectionRunner::new(
            projection,
            MemoryReadModels::new(),
            InMemoryEventStore::new(),
            bus.clone(),
            RunnerConfig::default(),
        );
        assert!(matches!(made, Err(ProjectionError::InvalidName { .. })), "{name:?}");
    }
    assert!(matches!(InProcessBus::new(0), Err(ProjectionError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_without_events_do_not_hold_the_lag_measurement_back() {
    // Four partitions, events in one stream only: three partitions never record a batch.
    // The runner's lag measurements move their positions up as they find nothing left in
    // them, a few events at a time, until every measurement reads the log from the head.
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(4).expect("bus");
    let read_models = MemoryReadModels::new();
    let config = RunnerConfig::default().lag_interval(Duration::from_millis(20)).lag_scan_limit(5);
    let runner =
        ProjectionRunner::new(TallyProjection::new("lone"), read_models.clone(), store.clone(), bus.clone(), config)
            .expect("runner");
    runner.set_up().await.expect("set up");
    let stop = CancellationToken::new();
    tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), stop.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), stop.clone());
        async move { runner.run(stop).await }
    });
    let outcomes = append_rounds(&store, 1, 4, 5).await;
    runner.wait_for_append(&outcomes[0], support::DEADLINE).await.expect("caught up");
    let head = store.log_head().await.expect("head").expect("events");

    support::wait_until("every partition's position reaches the head", || async {
        let partitions = read_models.partitions("lone").await.expect("partitions");
        partitions.len() == 4 && partitions.iter().all(|(_, state)| state.position == head)
    })
    .await;
    // Now one measurement reads nothing: it is exact, and the runner's status says so too.
    let lag = runner.lag().await.expect("lag");
    assert!(lag.exact && lag.caught_up(), "{lag:?}");
    support::wait_until("the runner's status has an exact, zero lag", || async {
        runner.status().lag.is_some_and(|lag| lag.exact && lag.caught_up())
    })
    .await;
    stop.cancel();
    running.await.expect("joined").expect("clean stop");
}

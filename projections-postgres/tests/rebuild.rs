//! Rebuilds: from the log into a shadow while the live model serves, interrupted and
//! resumed, swapped in atomically, handed over to live processing with no gap and no
//! double apply; new and changed projections built at start.

mod support;

use std::time::Duration;

use tidemark::{EventStore, InMemoryEventStore, LogPosition};
use tidemark_nats::RelayConfig;
use tidemark_projections::{
    Feed, InProcessBus, MemoryReadModels, ProjectionRunner, RebuildOptions, RebuildOutcome, RunnerConfig,
};
use tidemark_projections_postgres::PgLogFeed;
use tokio_util::sync::CancellationToken;

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{append_rounds, built_by, read_log, replay, tallies, wait_until, TallyProjection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_serves_the_live_model_until_an_atomic_swap_and_hands_over_without_gaps() {
    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let bench = rebuild_and_hand_over(bench, Bench::feed).await;
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_a_rebuild_serves_the_live_model_until_an_atomic_swap_and_hands_over_without_gaps() {
    // No relay: the runners read the store's log themselves.
    let bench = Bench::new(2).await;
    rebuild_and_hand_over(bench, pg_feed).await;
}

/// The PostgreSQL feed of the bench's store, partitioned like its JetStream stream.
fn pg_feed(bench: &Bench) -> PgLogFeed {
    PgLogFeed::new(bench.store.clone(), bench.scheme.partitions()).expect("feed")
}

/// A live version-1 runner and a rebuild of version 2 beside it (interrupted, resumed
/// while appends go on, swapped in), then the hand-over to the version-2 runner, all on
/// the feed `feed` makes.
async fn rebuild_and_hand_over<F: Feed>(bench: Bench, feed: fn(&Bench) -> F) -> Bench {
    let live = bench.runner("ledger", feed(&bench)).await;
    let (stop_live, live_task) = spawn_runner(&live);
    for outcome in append_rounds(&bench.store, 20, 3, 5).await {
        live.wait_for_append(&outcome, support::DEADLINE).await.expect("caught up");
    }

    // Version 2 of the projection is rebuilt next to the live version 1.
    let config = RunnerConfig::default().backoff(Duration::from_millis(20), Duration::from_millis(200));
    let projection = TallyProjection::versioned("ledger", 2);
    let next_feed = feed(&bench);
    let next = ProjectionRunner::new(projection, bench.read_models.clone(), bench.store.clone(), next_feed, config)
        .expect("runner");
    let stop = CancellationToken::new();
    let options = RebuildOptions::default().batch_size(40).stop_on(stop.clone());
    let outcome = next.rebuild(options, &mut |_| stop.cancel()).await.expect("rebuild");
    let RebuildOutcome::Interrupted { at } = outcome else { panic!("not interrupted: {outcome:?}") };
    assert!(at > LogPosition::START);

    // Interrupted: the live model is untouched and still applying.
    assert_eq!(built_by(&bench.read_models, live.projection()).await, Some(1));
    let appended = append_rounds(&bench.store, 20, 1, 5).await;
    for outcome in &appended {
        live.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let log = read_log(&bench.store, bench.settled_head().await).await;
    assert_eq!(tallies(&bench.read_models, live.projection()).await, replay(&log));

    // Resumed while appends go on, then swapped in.
    let writer = tokio::spawn({
        let store = bench.store.clone();
        async move { append_rounds(&store, 20, 2, 3).await }
    });
    let mut resumed_from = None;
    let outcome = next
        .rebuild(RebuildOptions::default().batch_size(40), &mut |p| {
            resumed_from.get_or_insert(p.resumed_from);
        })
        .await
        .expect("rebuild");
    assert!(matches!(outcome, RebuildOutcome::Completed { .. }), "{outcome:?}");
    assert_eq!(resumed_from, Some(at), "the second run resumed where the first stopped");
    assert_eq!(built_by(&bench.read_models, live.projection()).await, Some(2), "swapped in");
    let appended = writer.await.expect("writer");

    // Hand-over: the version-2 runner takes the consumers over from version 1.
    stop_live.cancel();
    live_task.await.expect("joined").expect("clean stop");
    let (stop_next, next_task) = spawn_runner(&next);
    let more = append_rounds(&bench.store, 20, 1, 4).await;
    for outcome in appended.iter().chain(&more) {
        next.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let log = read_log(&bench.store, bench.settled_head().await).await;
    let expected = replay(&log);
    wait_until("the rebuilt model equals a replay", || async {
        tallies(&bench.read_models, next.projection()).await == expected
    })
    .await;
    assert!(next.status().last_error.is_none(), "nothing applied twice: {:?}", next.status());

    stop_next.cancel();
    next_task.await.expect("joined").expect("clean stop");
    bench
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_changed_projections_are_built_from_the_log_at_start() {
    let store = InMemoryEventStore::new();
    // Nothing is ever published on this bus: whatever the read model holds came from the log.
    let bus = InProcessBus::new(2).expect("bus");
    let read_models = MemoryReadModels::new();
    append_rounds(&store, 6, 2, 5).await;
    let log = read_log(&store, store.log_head().await.expect("head").expect("events")).await;

    for version in [1, 2] {
        let projection = TallyProjection::versioned("built", version);
        let runner =
            ProjectionRunner::new(projection, read_models.clone(), store.clone(), bus.clone(), RunnerConfig::default())
                .expect("runner");
        runner.prepare().await.expect("prepared");
        assert_eq!(built_by(&read_models, runner.projection()).await, Some(version));
        assert_eq!(tallies(&read_models, runner.projection()).await, replay(&log));
    }
}

//! Two runner instances split the partitions through advisory locks; when one dies the
//! other takes its partitions over, and the read model still equals a replay. On the
//! JetStream feed (with a relay) and on the PostgreSQL feed (no relay).

mod support;

use tidemark_nats::RelayConfig;
use tidemark_projections::Feed;
use tidemark_projections_postgres::{Coordination, PgLogFeed};
use tokio_util::sync::CancellationToken;

use support::nats::{spawn_relay, Bench, PgRunner};
use support::{append_rounds, read_log, replay, tallies, wait_until};

fn spawn_shared<F: Feed>(
    runner: &PgRunner<F>,
    coordination: &Coordination,
) -> (CancellationToken, tokio::task::JoinHandle<tidemark_projections::Result<()>>) {
    let shutdown = CancellationToken::new();
    let (runner, coordination, stop) = (runner.clone(), coordination.clone(), shutdown.clone());
    (shutdown, tokio::spawn(async move { runner.run_shared(coordination, stop).await }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_split_partitions_and_one_takes_over_when_the_other_dies() {
    let bench = Bench::new(4).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    split_and_take_over(&bench, Bench::feed).await;
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_two_runners_split_partitions_and_one_takes_over_when_the_other_dies() {
    let bench = Bench::new(4).await;
    let feed = |bench: &Bench| PgLogFeed::new(bench.store.clone(), 4).expect("feed");
    split_and_take_over(&bench, feed).await;
}

async fn split_and_take_over<F: Feed>(bench: &Bench, feed: impl Fn(&Bench) -> F) {
    let coordination = Coordination::postgres(bench.store.pool().clone(), bench.schema.name());
    let first = bench.runner("split", feed(bench)).await;
    let second = bench.runner("split", feed(bench)).await;
    let (_, first_task) = spawn_shared(&first, &coordination);
    let (stop_second, second_task) = spawn_shared(&second, &coordination);

    wait_until("the runners hold two partitions each", || async {
        first.status().partitions.len() == 2 && second.status().partitions.len() == 2
    })
    .await;
    let (a, b) = (first.status().partitions, second.status().partitions);
    assert!(a.is_disjoint(&b), "{a:?} and {b:?} overlap");
    append_rounds(&bench.store, 16, 2, 5).await;
    wait_until("both runners have applied events", || async {
        first.status().totals.applied > 0 && second.status().totals.applied > 0
    })
    .await;

    // The first instance dies: its tasks end and its connections close, locks and all.
    first_task.abort();
    let _ = first_task.await;
    wait_until("the survivor holds every partition", || async { second.status().partitions.len() == 4 }).await;
    let outcomes = append_rounds(&bench.store, 16, 1, 5).await;
    for outcome in &outcomes {
        second.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    let expected = replay(&log);
    wait_until("the read model equals a replay", || async {
        tallies(&bench.read_models, second.projection()).await == expected
    })
    .await;
    // (No count of applied events from the runners' status here: the first runner was aborted
    // at any point, possibly after a commit and before its status counted that batch. The
    // read model equal to a replay is the check.)

    stop_second.cancel();
    second_task.await.expect("joined").expect("clean stop");
}

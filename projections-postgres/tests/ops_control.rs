//! `projections pause` and `resume` on PostgreSQL reach a running runner without a
//! restart, fed by the in-process bus or by JetStream.

mod support;

use std::time::{Duration, Instant};

use tidemark_nats::RelayConfig;
use tidemark_postgres::PgEventStore;
use tidemark_projections::{Feed, Ops, OpsExit};
use tidemark_projections_postgres::PgReadModels;

use support::deployment::{caught_up, json, run, taken_in, Deployment};
use support::nats::{spawn_relay, spawn_runner, Bench, PgRunner};
use support::{append_rounds, wait_until, TallyProjection};

/// Pauses `runner`'s projection (running, caught up), checks it takes nothing in while
/// events come, resumes it and checks it catches up within five seconds.
async fn pause_and_resume<F: Feed>(store: &PgEventStore, read_models: &PgReadModels, runner: &PgRunner<F>) {
    let ops = Ops::new(store.clone()).projection(runner.clone()).non_interactive();
    let (exit, out, err) = run(&ops, &["projections", "pause", "held", "--json"]).await;
    let paused_at = Instant::now();
    assert_eq!(exit, OpsExit::Done, "{err}");
    assert_eq!(json(&out), serde_json::json!({ "projection": "held", "paused": true, "changed": true }));
    let (_, out, _) = run(&ops, &["projections", "pause", "held"]).await;
    assert_eq!(out, "held was paused already\n");
    // The pause holds from at most a second after the command (the runners' promise).
    tokio::time::sleep_until((paused_at + Duration::from_secs(1)).into()).await;
    let before = taken_in(read_models, "held").await;
    append_rounds(store, 6, 2, 3).await;
    wait_until("a partition loop notices the pause", || async { runner.status().paused }).await;
    // Nothing may be taken in for a while: two seconds, twice the promised bound.
    let window = Instant::now() + Duration::from_secs(2);
    while Instant::now() < window {
        assert_eq!(taken_in(read_models, "held").await, before, "a paused projection took events in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (exit, out, _) = run(&ops, &["projections", "status", "--json"]).await;
    assert_eq!((exit, json(&out)["paused"].as_bool()), (OpsExit::Done, Some(true)), "{out}");
    let (_, out, _) = run(&ops, &["projections", "status"]).await;
    assert!(out.starts_with("held  v1 (built v1)  paused  lag"), "{out}");

    let (exit, out, _) = run(&ops, &["projections", "resume", "held"]).await;
    let resumed_at = Instant::now();
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "resumed held: its runners go on within a second\n"));
    let bound = Duration::from_secs(5);
    tidemark_testkit::wait_until("the resumed runner catches up", bound, || caught_up(store, read_models, runner))
        .await;
    eprintln!("resumed and caught up in {:?}", resumed_at.elapsed());
    assert!(!runner.status().paused);
    let (_, out, _) = run(&ops, &["projections", "status", "--json"]).await;
    assert_eq!(json(&out)["paused"].as_bool(), Some(false), "{out}");
    let (exit, _, err) = run(&ops, &["projections", "pause", "nope"]).await;
    assert_eq!(exit, OpsExit::Failed, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_projection_on_the_in_process_bus_takes_nothing_in_until_resumed() {
    support::logs();
    let deployment = Deployment::new().await;
    let runner = deployment.runner(TallyProjection::new("held")).await;
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), deployment.stop.clone());
        async move { runner.run(stop).await }
    });
    append_rounds(&deployment.store, 6, 2, 3).await;
    let (store, read_models) = (&deployment.store, &deployment.read_models);
    wait_until("the runner takes the first events in", || caught_up(store, read_models, &runner)).await;
    pause_and_resume(&deployment.store, &deployment.read_models, &runner).await;
    deployment.stop.cancel();
    running.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_projection_on_jetstream_takes_nothing_in_until_resumed() {
    let bench = Bench::new(2).await;
    let (relay_stop, relay) = spawn_relay(&bench.relay(RelayConfig::new("held")).await);
    let runner = bench.runner("held", bench.feed()).await;
    let (runner_stop, running) = spawn_runner(&runner);
    append_rounds(&bench.store, 6, 2, 3).await;
    wait_until("the runner takes the first events in", || caught_up(&bench.store, &bench.read_models, &runner)).await;
    pause_and_resume(&bench.store, &bench.read_models, &runner).await;
    runner_stop.cancel();
    running.await.expect("joined").expect("clean stop");
    relay_stop.cancel();
    relay.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

//! The ops commands that steer projections, on PostgreSQL: pause and resume reach a
//! running runner without a restart, replay re-applies from a log position or a time, and
//! `rebuild --all` rebuilds every projection after one confirmation.

mod support;

use std::time::{Duration, Instant};

use clap::Parser;
use tidemark::{EventStore, LogPosition};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{InProcessBus, Ops, OpsCommand, OpsExit, ProjectionRunner, ReadModelsAdmin, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use support::{append_rounds, read_log, replay, tallies, wait_until, TallyProjection};

/// An application's command line with the ops commands mounted.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    ops: OpsCommand,
}

type Runner = ProjectionRunner<TallyProjection, PgReadModels, PgEventStore, InProcessBus>;

/// A migrated schema, its store and read models, and an in-process bus pumped from the
/// store until the returned token is cancelled.
struct Deployment {
    _schema: TestSchema,
    store: PgEventStore,
    read_models: PgReadModels,
    bus: InProcessBus,
    stop: CancellationToken,
}

impl Deployment {
    async fn new() -> Self {
        let schema = TestSchema::new().await;
        let config = PgStoreConfig::default().schema(schema.name());
        let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
        store.migrate().await.expect("migrate the store");
        let read_models = PgReadModels::new(&store);
        read_models.migrate().await.expect("migrate the read models");
        let bus = InProcessBus::new(2).expect("bus");
        let stop = CancellationToken::new();
        tokio::spawn({
            let (bus, store, stop) = (bus.clone(), store.clone(), stop.clone());
            async move { bus.pump(&store, LogPosition::START, stop).await }
        });
        Self { _schema: schema, store, read_models, bus, stop }
    }

    async fn runner(&self, name: &str) -> Runner {
        let config = RunnerConfig::default().batch_size(10).lag_interval(Duration::ZERO);
        let projection = TallyProjection::new(name);
        let runner =
            ProjectionRunner::new(projection, self.read_models.clone(), self.store.clone(), self.bus.clone(), config)
                .expect("runner");
        runner.set_up().await.expect("set up");
        runner
    }

    /// Events the projection has taken in, over its partitions.
    async fn taken_in(&self, name: &str) -> u64 {
        let partitions = self.read_models.partitions(name).await.expect("partitions");
        partitions.iter().map(|(_, state)| state.events).sum()
    }

    async fn caught_up(&self, runner: &Runner) -> bool {
        let head = self.store.log_head().await.expect("head").unwrap_or(LogPosition::START);
        let log = read_log(&self.store, head).await;
        tallies(&self.read_models, runner.projection()).await == replay(&log)
    }
}

async fn run(ops: &Ops<PgEventStore>, args: &[&str]) -> (OpsExit, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied())).expect("valid arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = ops.run(&cli.ops, &mut out, &mut err).await;
    (exit, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("one JSON object, not {out:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_projection_takes_nothing_in_until_resumed_without_a_restart() {
    support::logs();
    let deployment = Deployment::new().await;
    let runner = deployment.runner("held").await;
    let ops = Ops::new(deployment.store.clone()).projection(runner.clone()).non_interactive();
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), deployment.stop.clone());
        async move { runner.run(stop).await }
    });
    append_rounds(&deployment.store, 6, 2, 3).await;
    wait_until("the runner takes the first events in", || deployment.caught_up(&runner)).await;

    let (exit, out, err) = run(&ops, &["projections", "pause", "held", "--json"]).await;
    let paused_at = Instant::now();
    assert_eq!(exit, OpsExit::Done, "{err}");
    assert_eq!(json(&out), serde_json::json!({ "projection": "held", "paused": true, "changed": true }));
    let (_, out, _) = run(&ops, &["projections", "pause", "held"]).await;
    assert_eq!(out, "held was paused already\n");
    // The pause holds from at most a second after the command (the runners' promise).
    tokio::time::sleep_until((paused_at + Duration::from_secs(1)).into()).await;
    let before = deployment.taken_in("held").await;
    append_rounds(&deployment.store, 6, 2, 3).await;
    wait_until("a partition loop notices the pause", || async { runner.status().paused }).await;
    // Nothing may be taken in for a while: two seconds, twice the promised bound.
    let window = Instant::now() + Duration::from_secs(2);
    while Instant::now() < window {
        assert_eq!(deployment.taken_in("held").await, before, "a paused projection took events in");
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
    tidemark_testkit::wait_until("the resumed runner catches up", bound, || deployment.caught_up(&runner)).await;
    eprintln!("resumed and caught up in {:?}", resumed_at.elapsed());
    assert!(!runner.status().paused);
    let (_, out, _) = run(&ops, &["projections", "status", "--json"]).await;
    assert_eq!(json(&out)["paused"].as_bool(), Some(false), "{out}");
    let (exit, _, err) = run(&ops, &["projections", "pause", "nope"]).await;
    assert_eq!(exit, OpsExit::Failed, "{err}");

    deployment.stop.cancel();
    running.await.expect("joined").expect("clean stop");
}

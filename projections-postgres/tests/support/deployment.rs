//! A PostgreSQL deployment for the ops commands' tests: a migrated schema, its store and
//! read models, and an in-process bus pumped from the store.

use std::time::Duration;

use clap::Parser;

use tidemark::{EventStore, LogPosition};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{
    Feed, InProcessBus, Ops, OpsCommand, OpsExit, Projection, ProjectionRunner, ReadModelsAdmin, RunnerConfig,
};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use super::{read_log, replay, tallies, TallyProjection};

/// A runner of the deployment.
pub(crate) type Runner<P> = ProjectionRunner<P, PgReadModels, PgEventStore, InProcessBus>;

/// A migrated schema, its store and read models, and an in-process bus pumped from the
/// store until the returned token is cancelled.
pub(crate) struct Deployment {
    _schema: TestSchema,
    pub store: PgEventStore,
    pub read_models: PgReadModels,
    pub bus: InProcessBus,
    pub stop: CancellationToken,
}

impl Deployment {
    /// A deployment in a schema of its own.
    pub(crate) async fn new() -> Self {
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

    /// A runner of `projection`, set up.
    pub(crate) async fn runner<P: Projection<PgReadModels>>(&self, projection: P) -> Runner<P> {
        let config = RunnerConfig::default().batch_size(10).lag_interval(Duration::ZERO);
        let runner =
            ProjectionRunner::new(projection, self.read_models.clone(), self.store.clone(), self.bus.clone(), config)
                .expect("runner");
        runner.set_up().await.expect("set up");
        runner
    }

    /// Events the projection has taken in, over its partitions.
    pub(crate) async fn taken_in(&self, name: &str) -> u64 {
        taken_in(&self.read_models, name).await
    }
}

/// Events the projection `name` has taken in, over its partitions.
pub(crate) async fn taken_in(read_models: &PgReadModels, name: &str) -> u64 {
    let partitions = read_models.partitions(name).await.expect("partitions");
    partitions.iter().map(|(_, state)| state.events).sum()
}

/// Whether the tally projection of `runner` holds what a replay of the readable log gives.
pub(crate) async fn caught_up<F: Feed>(
    store: &PgEventStore,
    read_models: &PgReadModels,
    runner: &ProjectionRunner<TallyProjection, PgReadModels, PgEventStore, F>,
) -> bool {
    let head = store.log_head().await.expect("head").unwrap_or(LogPosition::START);
    let log = read_log(store, head).await;
    tallies(read_models, runner.projection()).await == replay(&log)
}

/// An application's command line with the ops commands mounted.
#[derive(Debug, Parser)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub ops: OpsCommand,
}

/// Runs the ops command `args` (without the program's name): its exit, output and errors.
pub(crate) async fn run(ops: &Ops<PgEventStore>, args: &[&str]) -> (OpsExit, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied())).expect("valid arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = ops.run(&cli.ops, &mut out, &mut err).await;
    (exit, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

/// The one JSON object `out` holds.
pub(crate) fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("one JSON object, not {out:?}: {e}"))
}

//! The poison scenarios on the PostgreSQL feed: a runner reading a real store's log with
//! `PgLogFeed` parks a stream at its poison event while the other streams keep flowing; a
//! retry after the fix applies the parked events in stream order; a skip is recorded.
//! The read model is checked against a fold of the `events` table in plain SQL.

mod support;

use std::time::{Duration, Instant};

use tidemark::{AppendRequest, EventStore as _, ExpectedVersion, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{DeadLetterStatus, PoisonPolicy, ProjectionRunner, ReadModelsAdmin as _};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tidemark_testkit::TestSchema;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use support::fragile::{config, orders, traffic, Fragile, SICK};
use support::nats::spawn_runner;
use support::sql_fold::{sql_fold, Fold};
use support::{events, stream, tallies, DEADLINE};

/// How soon events of healthy streams must be applied while a stream is parked.
const FLOWING: Duration = Duration::from_secs(2);

type Runner = ProjectionRunner<Fragile, PgReadModels, PgEventStore, PgLogFeed>;

/// A migrated store in a schema of its own and a runner of the fragile projection on the
/// store's log, in two partitions.
struct Setup {
    schema: TestSchema,
    store: PgEventStore,
    read_models: PgReadModels,
    runner: Runner,
    stop: CancellationToken,
    task: JoinHandle<tidemark_projections::Result<()>>,
}

impl Setup {
    async fn new(policy: PoisonPolicy) -> Self {
        let schema = TestSchema::new().await;
        let store_config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(50));
        let store = PgEventStore::from_pool(schema.pool().clone(), store_config).expect("store");
        store.migrate().await.expect("migrate the store");
        let read_models = PgReadModels::new(&store);
        read_models.migrate().await.expect("migrate the read models");
        let feed = PgLogFeed::new(store.clone(), 2).expect("feed");
        let projection = Fragile::new("fragile", true);
        let runner = ProjectionRunner::new(projection, read_models.clone(), store.clone(), feed, config(policy))
            .expect("runner");
        runner.set_up().await.expect("set up");
        let (stop, task) = spawn_runner(&runner);
        Self { schema, store, read_models, runner, stop, task }
    }

    /// The plain-SQL fold of the log, leaving out versions `except` of the sick stream.
    async fn fold(&self, except: Option<std::ops::RangeInclusive<u64>>) -> Fold {
        let sick = stream(SICK);
        sql_fold(self.schema.pool(), self.schema.name(), except.map(|range| (&sick, range))).await
    }

    /// Asserts the read model (tallies and order of versions applied) equals `fold`.
    async fn assert_holds(&self, fold: &Fold) {
        let projection = self.runner.projection();
        assert_eq!(tallies(&self.read_models, &projection.inner).await, fold.tallies, "tallies");
        assert_eq!(orders(&self.read_models, projection).await, fold.versions, "versions applied, in order");
    }

    /// The dead letters as (version, status), all of the sick stream.
    async fn letters(&self) -> Vec<(u64, DeadLetterStatus)> {
        let letters = self.runner.dead_letters().await.expect("dead letters");
        assert!(letters.iter().all(|l| l.stream_id == stream(SICK)), "{letters:?}");
        letters.iter().map(|l| (l.stream_version.0, l.status)).collect()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("joined").expect("clean stop");
    }
}

/// Appends one more event to the sick stream, after `version`.
async fn append_sick(store: &PgEventStore, version: u64) -> tidemark::AppendOutcome {
    let request = AppendRequest::new(
        stream(SICK),
        ExpectedVersion::Exact(StreamVersion(version)),
        events(SICK, version as usize, 1),
    );
    store.append(request).await.expect("append")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_a_poison_event_parks_its_stream_while_others_flow_and_a_retry_drains_it_in_order() {
    let setup = Setup::new(PoisonPolicy::Park).await;
    let runner = &setup.runner;
    for outcome in &traffic(&setup.store).await {
        runner.wait_for_append(outcome, DEADLINE).await.expect("taken in");
    }
    let letters = runner.dead_letters().await.expect("dead letters");
    assert!(letters[0].error.contains("unlucky amount"), "{}", letters[0].error);
    let parked = |to: u64| (3..=to).map(|v| (v, DeadLetterStatus::Parked)).collect::<Vec<_>>();
    assert_eq!(setup.letters().await, parked(6), "the poison event and everything after it");
    let stored = setup.read_models.stream_seen("fragile", &stream(SICK)).await.expect("seen");
    assert_eq!(stored, StreamVersion(6), "the parked versions count as taken in");
    setup.assert_holds(&setup.fold(Some(3..=6)).await).await;

    // While the stream is parked, another round on every healthy stream is applied within
    // the bound; a new event of the sick stream is parked behind the poison event.
    let started = Instant::now();
    let mut outcomes = support::append_rounds(&setup.store, 10, 1, 5).await;
    outcomes.push(append_sick(&setup.store, 6).await);
    for outcome in &outcomes {
        runner.wait_for_append(outcome, FLOWING).await.expect("taken in while the stream is parked");
    }
    let took = started.elapsed();
    assert!(took < FLOWING, "the healthy streams took {took:?}");
    assert_eq!(setup.letters().await, parked(7));
    setup.assert_holds(&setup.fold(Some(3..=7)).await).await;

    // Retrying before the fix changes nothing.
    assert!(runner.retry_parked(&stream(SICK)).await.is_err());
    assert_eq!(setup.letters().await, parked(7));
    setup.assert_holds(&setup.fold(Some(3..=7)).await).await;

    // After the fix: versions 3, 4, 6 and 7 applied (5 is a `Noted`), in stream order.
    runner.projection().fix();
    assert_eq!(runner.retry_parked(&stream(SICK)).await.expect("retried"), 4);
    assert!(setup.letters().await.is_empty());
    let fold = setup.fold(None).await;
    assert_eq!(fold.versions[stream(SICK).as_str()], vec![1, 2, 3, 4, 6, 7]);
    setup.assert_holds(&fold).await;

    // The stream flows again.
    let outcome = append_sick(&setup.store, 7).await;
    runner.wait_for_append(&outcome, FLOWING).await.expect("taken in");
    assert!(setup.letters().await.is_empty());
    setup.assert_holds(&setup.fold(None).await).await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_skipping_a_parked_stream_records_the_skip_and_the_stream_goes_on() {
    let setup = Setup::new(PoisonPolicy::Park).await;
    let runner = &setup.runner;
    for outcome in &traffic(&setup.store).await {
        runner.wait_for_append(outcome, DEADLINE).await.expect("taken in");
    }
    let parked: Vec<_> = (3..=6).map(|v| (v, DeadLetterStatus::Parked)).collect();
    assert_eq!(setup.letters().await, parked);

    // Skipped while still broken: kept as a record, never applied.
    assert_eq!(runner.skip_parked(&stream(SICK)).await.expect("skipped"), 4);
    let skipped: Vec<_> = (3..=6).map(|v| (v, DeadLetterStatus::Skipped)).collect();
    assert_eq!(setup.letters().await, skipped);
    let outcome = append_sick(&setup.store, 6).await;
    runner.wait_for_append(&outcome, FLOWING).await.expect("the stream flows again");
    assert_eq!(setup.letters().await, skipped, "the next event is applied, not parked");
    let fold = setup.fold(Some(3..=6)).await;
    assert_eq!(fold.versions[stream(SICK).as_str()], vec![1, 2, 7]);
    setup.assert_holds(&fold).await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_the_skip_policy_records_the_poison_event_and_goes_on() {
    let setup = Setup::new(PoisonPolicy::Skip).await;
    let runner = &setup.runner;
    for outcome in &traffic(&setup.store).await {
        runner.wait_for_append(outcome, DEADLINE).await.expect("taken in");
    }
    let letters = runner.dead_letters().await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].error.contains("unlucky amount"), "{}", letters[0].error);
    assert_eq!(setup.letters().await, vec![(3, DeadLetterStatus::Skipped)]);
    // Every event but the poison one was applied, in order.
    let fold = setup.fold(Some(3..=3)).await;
    assert_eq!(fold.versions[stream(SICK).as_str()], vec![1, 2, 4, 6]);
    setup.assert_holds(&fold).await;
    setup.stop().await;
}

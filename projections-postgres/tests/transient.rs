//! A read-model database that goes away while a projection applies (its `apply` fails with
//! a transient sqlx error) is not the event's fault: the batch is retried, however often,
//! and the event is never parked as poison. Telling such an error apart is the backend's
//! part (`ReadModels::is_unavailable`), so the read models are PostgreSQL's. The scenario
//! runs on an in-process bus and on the PostgreSQL feed (`PgLogFeed`).

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tidemark::{Envelope, EventCodec, EventStore, InMemoryEventStore, LogPosition};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{
    ApplyError, DocumentTx, Feed, InProcessBus, PoisonPolicy, Projection, ProjectionRunner, ReadModels, RunnerConfig,
};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use support::{read_log, replay, tallies, LedgerEvent, TallyProjection};

/// The tally projection, whose first `outages` applies fail as if the database connection
/// had dropped.
struct Flaky {
    inner: TallyProjection,
    outages: AtomicU32,
    failed: AtomicU32,
}

impl<R> Projection<R> for Flaky
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        Projection::<R>::name(&self.inner)
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        Projection::<R>::codec(&self.inner)
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let left = self.outages.load(Ordering::SeqCst);
        if left > 0 {
            self.outages.store(left - 1, Ordering::SeqCst);
            self.failed.fetch_add(1, Ordering::SeqCst);
            let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "server closed the connection");
            return Err(Box::new(sqlx::Error::Io(lost)));
        }
        Projection::<R>::apply(&self.inner, tx, event).await
    }
}

/// A migrated store in a schema of its own and its read models.
async fn postgres(schema: &TestSchema) -> (PgEventStore, PgReadModels) {
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(50));
    let pg = PgEventStore::from_pool(schema.pool().clone(), config).expect("pg store");
    pg.migrate().await.expect("migrate");
    let read_models = PgReadModels::new(&pg);
    read_models.migrate().await.expect("projection migrations");
    (pg, read_models)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_apply_is_retried_and_never_parks_the_event() {
    // Events from an in-memory store, through an in-process bus pumped from it.
    let store = InMemoryEventStore::new();
    let bus = InProcessBus::new(1).expect("bus");
    let schema = TestSchema::new().await;
    let (_, read_models) = postgres(&schema).await;
    let pump = CancellationToken::new();
    tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), pump.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    outage_is_retried(store, read_models, bus).await;
    pump.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_an_outage_during_apply_is_retried_and_never_parks_the_event() {
    // Events read from the store's log by the runner itself.
    let schema = TestSchema::new().await;
    let (store, read_models) = postgres(&schema).await;
    let feed = PgLogFeed::new(store.clone(), 1).expect("feed");
    outage_is_retried(store, read_models, feed).await;
}

async fn outage_is_retried<S, F>(store: S, read_models: PgReadModels, feed: F)
where
    S: EventStore + Clone + 'static,
    F: Feed,
{
    // Far more failures than the three attempts after which a failing event would park.
    let projection =
        Flaky { inner: TallyProjection::new("flaky"), outages: AtomicU32::new(12), failed: AtomicU32::new(0) };
    let config = RunnerConfig::default()
        .batch_size(20)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .poison(PoisonPolicy::Park, 3);
    let runner = ProjectionRunner::new(projection, read_models.clone(), store.clone(), feed, config).expect("runner");
    runner.set_up().await.expect("set up");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });

    let outcomes = support::append_rounds(&store, 4, 2, 3).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("taken in");
    }
    assert_eq!(runner.projection().failed.load(Ordering::SeqCst), 12, "every outage happened");
    assert!(runner.dead_letters().await.expect("dead letters").is_empty(), "nothing parked");
    let head = store.log_head().await.expect("head").expect("events");
    let expected = replay(&read_log(&store, head).await);
    assert_eq!(tallies(&read_models, &runner.projection().inner).await, expected);
    shutdown.cancel();
    task.await.expect("joined").expect("clean stop");
}

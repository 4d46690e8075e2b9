//! On PostgreSQL a partition that has just committed a batch begins the next batch's
//! transaction (`BEGIN`, its locks, its savepoint) while it waits for that batch, so the
//! batch does not wait for that round trip. A transaction begun so and left unused is
//! committed after a short wait; the wait after that begins nothing, until batches come
//! close together again. Batches hold the connection a pool can spare, never the last.

mod support;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tidemark::{AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, LogPosition};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{
    ApplyError, DocumentReader, DocumentTx, Incoming, Projection, ProjectionRunner, ReadModels, RunnerConfig,
};
use tidemark_projections_postgres::{PgReadModels, PgTx};
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use support::scripted::Scripted;
use support::{events, read_log, stream, LedgerEvent};
use tidemark_projections::{BatchOptimisations, ReadModelsAdmin};

/// Keeps, per stream, when the transaction that applied its last event began.
struct Stamp {
    codec: EventCodec<LedgerEvent>,
}

impl Projection<PgReadModels> for Stamp {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "stamp"
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut PgTx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        // `now()` is the time the transaction began.
        let began: String = sqlx::query_scalar("SELECT now()::text").fetch_one(tx.conn()).await?;
        tx.put_as("began", event.stream_id.as_str(), &began).await
    }
}

/// Sessions of this test's schema that sit idle inside a transaction: a batch
/// transaction begun early, waiting for its batch (its `BEGIN` names the schema in the
/// search path it sets).
async fn idle_batch_transactions(schema: &TestSchema) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND state = 'idle in transaction' AND query LIKE 'BEGIN;%' AND strpos(query, $1) > 0";
    sqlx::query_scalar(sql).bind(schema.name()).fetch_one(schema.pool()).await.expect("pg_stat_activity")
}

async fn server_now(schema: &TestSchema) -> String {
    sqlx::query_scalar("SELECT clock_timestamp()::text").fetch_one(schema.pool()).await.expect("clock")
}

/// Whether the transaction that applied `stream`'s last event began before `instant`.
async fn began_before(schema: &TestSchema, models: &PgReadModels, stream: &str, instant: &str) -> bool {
    let found = models.document("stamp", "began", stream).await.expect("read document");
    let began: String = serde_json::from_value(found.expect("the stream was applied")).expect("a time");
    sqlx::query_scalar("SELECT $1::timestamptz < $2::timestamptz")
        .bind(&began)
        .bind(instant)
        .fetch_one(schema.pool())
        .await
        .expect("compare")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_an_idle_partition_runs_in_a_transaction_begun_before_it_came() {
    support::logs();
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let models = PgReadModels::new(&store);
    models.migrate().await.expect("projection migrations");
    let mut last = LogPosition::default();
    for n in 1..=4 {
        let request = AppendRequest::new(stream(n), ExpectedVersion::NoStream, events(n, 0, 1));
        last = store.append(request).await.expect("append").last_position.expect("appended");
    }
    let log = read_log(&store, last).await;
    let batch = |n: usize| vec![Incoming::Untrusted(log[n - 1].clone())];

    let codec = EventCodec::without_upcasters().expect("codec");
    let (feed, mut script) = Scripted::new();
    // Long enough that the test sees the early transaction before it is given up.
    let config = RunnerConfig::default().begin_early_for(Duration::from_secs(2));
    let runner = ProjectionRunner::new(Stamp { codec }, models.clone(), store, feed, config).expect("runner");
    runner.set_up().await.expect("set up");
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (runner, stop) = (runner.clone(), stop.clone());
        async move { runner.run(stop).await }
    });

    // After the first batch, the second's transaction begins while the partition waits.
    script.deliver(batch(1)).await;
    support::wait_until("a batch transaction begun early", || async { idle_batch_transactions(&schema).await == 1 })
        .await;
    let before_second = server_now(&schema).await;
    script.deliver(batch(2)).await;
    assert!(
        began_before(&schema, &models, stream(2).as_str(), &before_second).await,
        "the second batch's transaction began after the batch was sent"
    );

    // No batch comes: the third's transaction, begun after the second, is committed
    // unused, and a projection-wide lock (a rebuild's) is granted once it is.
    support::wait_until("a batch transaction begun early", || async { idle_batch_transactions(&schema).await == 1 })
        .await;
    let mut rebuild = models.begin().await.expect("begin");
    tokio::time::timeout(support::DEADLINE, models.lock_projection(&mut rebuild, "stamp"))
        .await
        .expect("the unused transaction kept the projection locked")
        .expect("lock the projection");
    assert_eq!(idle_batch_transactions(&schema).await, 0, "the unused transaction is still open");
    models.commit(rebuild).await.expect("commit");

    // The wait for the third batch outlasted the early transaction, so the wait for the
    // fourth begins nothing: its transaction begins once it has come.
    script.deliver(batch(3)).await;
    let before_fourth = server_now(&schema).await;
    assert_eq!(idle_batch_transactions(&schema).await, 0, "a transaction was begun after a long wait");
    script.deliver(batch(4)).await;
    assert!(
        !began_before(&schema, &models, stream(4).as_str(), &before_fourth).await,
        "the fourth batch's transaction began before it was sent"
    );

    stop.cancel();
    task.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_begin_early_only_while_the_pool_has_a_connection_to_spare() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let options = schema.pool().connect_options().as_ref().clone();
    let pool = PgPoolOptions::new().max_connections(3).connect_with(options).await.expect("pool");
    let models = PgReadModels::from_pool(pool.clone(), &config).expect("read models");
    models.migrate().await.expect("projection migrations");
    assert!(models.begins_early(), "an unused pool of three");
    let first = pool.acquire().await.expect("a connection");
    assert!(models.begins_early(), "one in use: one for the early batch, one to spare");
    let second = pool.acquire().await.expect("a connection");
    assert!(!models.begins_early(), "two in use: the early batch would take the last");
    drop(second);
    support::wait_until("one connection in use again", || async { models.begins_early() }).await;
    drop(first);
}

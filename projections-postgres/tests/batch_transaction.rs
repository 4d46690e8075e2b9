//! A batch's transaction on PostgreSQL that does not commit (dropped, failed, or abandoned
//! while it waits for its partition lock) leaves nothing behind: neither rows, nor a
//! pooled session inside its transaction, nor a lock held; and a failed one is not
//! reported committed.

mod support;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tidemark::{LogPosition, StreamId, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{BatchOptimisations, ReadModelsAdmin};
use tidemark_projections::{Progress, ReadModels, Seen};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;

async fn migrated(schema: &TestSchema) -> PgStoreConfig {
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config.clone()).expect("store");
    store.migrate().await.expect("migrate");
    config
}

/// A pool of one connection, so a session returned inside a transaction would be reused.
async fn one_connection(schema: &TestSchema) -> PgPool {
    let options = PgConnectOptions::from_str(schema.url()).expect("url");
    PgPoolOptions::new().max_connections(1).connect_with(options).await.expect("connect")
}

fn stream(id: &str) -> StreamId {
    StreamId::new(id).expect("stream id")
}

fn progress(stream: &StreamId, version: u64, parked: bool) -> Progress {
    Progress {
        position: LogPosition::new(41, 7),
        events: 3,
        streams: vec![(stream.clone(), Seen { version: StreamVersion(version), parked })],
        ..Progress::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_dropped_or_failed_before_its_commit_leaves_nothing_behind() {
    let schema = TestSchema::new().await;
    let config = migrated(&schema).await;
    let models = PgReadModels::from_pool(one_connection(&schema).await, &config).expect("models");
    models.migrate().await.expect("projection migrations");
    let account = stream("account-1");

    // Dropped after its writes: the pool's only connection must not come back inside it,
    // or the next reads would see them.
    let mut tx = models.begin_batch("totals", 0).await.expect("begin");
    models.lock_and_read_seen(&mut tx, "totals", 0, std::slice::from_ref(&account)).await.expect("read");
    models.record(&mut tx, "totals", 0, &progress(&account, 2, false)).await.expect("record");
    drop(tx);
    assert_eq!(models.partitions("totals").await.expect("partitions"), vec![]);
    assert_eq!(models.stream_seen("totals", &account).await.expect("seen"), StreamVersion(0));

    // Failed: a statement of the batch failed and the projection did not pass the error
    // on. The commit must fail, not report a commit the server turned into a rollback.
    let mut tx = models.begin_batch("totals", 0).await.expect("begin");
    models.lock_and_read_seen(&mut tx, "totals", 0, std::slice::from_ref(&account)).await.expect("read");
    models.record(&mut tx, "totals", 0, &progress(&account, 2, false)).await.expect("record");
    assert!(sqlx::query("SELECT 1 / 0").execute(tx.conn()).await.is_err());
    let committed = models.commit(tx).await;
    assert!(committed.is_err(), "{committed:?}");
    assert_eq!(models.partitions("totals").await.expect("partitions"), vec![]);

    // The partition is free again: a batch of it commits.
    let mut tx = models.begin_batch("totals", 0).await.expect("begin");
    models.record(&mut tx, "totals", 0, &progress(&account, 2, false)).await.expect("record");
    models.commit(tx).await.expect("commit");
    assert_eq!(models.stream_seen("totals", &account).await.expect("seen"), StreamVersion(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_abandoned_while_waiting_for_its_lock_does_not_keep_it() {
    let schema = TestSchema::new().await;
    let config = migrated(&schema).await;
    let waiter = PgReadModels::from_pool(one_connection(&schema).await, &config).expect("models");
    waiter.migrate().await.expect("projection migrations");
    let holder_models = PgReadModels::from_pool(schema.pool().clone(), &config).expect("models");
    holder_models.migrate().await.expect("projection migrations");

    let holder = holder_models.begin_batch("totals", 5).await.expect("begin");
    let waiting = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.begin_batch("totals", 5).await.map(|_| ()) }
    });
    support::one_waits_for_an_advisory_lock(schema.pool()).await;
    // The runner stops (or times out) while the batch waits; then the lock is released.
    waiting.abort();
    assert!(waiting.await.is_err_and(|e| e.is_cancelled()), "the waiting batch was cancelled");
    holder_models.commit(holder).await.expect("commit");

    // The abandoned session got the lock once it was released; had it gone back to the
    // pool, it would hold the lock in an open transaction and this batch would wait forever.
    let again = tokio::time::timeout(Duration::from_secs(30), holder_models.begin_batch("totals", 5)).await;
    let tx = again.expect("the partition lock was left held").expect("begin");
    holder_models.commit(tx).await.expect("commit");
    let waiter_tx = waiter.begin_batch("totals", 5).await.expect("the waiting pool still works");
    waiter.commit(waiter_tx).await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reads_and_records_with_plans_made_once_per_connection() {
    let schema = TestSchema::new().await;
    let config = migrated(&schema).await;
    let models = PgReadModels::from_pool(one_connection(&schema).await, &config).expect("models");
    models.migrate().await.expect("projection migrations");
    for n in 1..=12u64 {
        let streams = [stream(&format!("account-{n}")), stream(&format!("account-{}", n + 100))];
        let mut tx = models.begin_batch("totals", 0).await.expect("begin");
        let (_, seen) = models.lock_and_read_seen(&mut tx, "totals", 0, &streams).await.expect("read");
        assert!(seen.is_empty(), "{seen:?}");
        models.record(&mut tx, "totals", 0, &progress(&streams[0], n, false)).await.expect("record");
        models.commit(tx).await.expect("commit");
    }
    // Batches applied before their check record with one statement that checks.
    for n in 1..=12u64 {
        let mut tx = models.begin_batch("totals", 0).await.expect("begin");
        let fresh = progress(&stream(&format!("account-{}", n + 200)), 1, false);
        assert!(models.record_if_seen(&mut tx, "totals", 0, &fresh, &[StreamVersion(0)]).await.expect("recorded"));
        models.commit(tx).await.expect("commit");
    }
    // The pool's one connection ran every batch; its prepared statements show how they
    // were planned. PostgreSQL plans the first five executions for their values, then
    // keeps a generic plan when it costs no more than those did.
    let plans = "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE $1";
    let mut conn = models.pool().acquire().await.expect("connection");
    for (statement, pattern) in [
        ("the read", "%AS u(id)%LEFT JOIN%"),
        ("the record", "%GREATEST(s.version%"),
        ("the checking record", "%AS u(id, v, p, prev)%"),
    ] {
        let (generic, custom): (i64, i64) =
            sqlx::query_as(plans).bind(pattern).fetch_one(&mut *conn).await.expect("the statement");
        assert!(
            generic > 0 && custom <= 5,
            "{statement} is planned again for each batch: {generic} generic, {custom} custom"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checking_record_probes_its_streams_not_the_whole_projection() {
    let schema = TestSchema::new().await;
    let config = migrated(&schema).await;
    let models = PgReadModels::from_pool(one_connection(&schema).await, &config).expect("models");
    models.migrate().await.expect("projection migrations");
    // The statement's generic plan is made while the projection has few streams...
    for n in 1..=8u64 {
        let mut tx = models.begin_batch("totals", 0).await.expect("begin");
        let fresh = progress(&stream(&format!("account-{n}")), 1, false);
        assert!(models.record_if_seen(&mut tx, "totals", 0, &fresh, &[StreamVersion(0)]).await.expect("recorded"));
        models.commit(tx).await.expect("commit");
    }
    // ...and still used when it has many.
    let many = Progress {
        streams: (100..3100)
            .map(|n| (stream(&format!("account-{n}")), Seen { version: StreamVersion(1), parked: false }))
            .collect(),
        ..Progress::default()
    };
    let mut tx = models.begin_batch("totals", 0).await.expect("begin");
    models.record(&mut tx, "totals", 0, &many).await.expect("record");
    models.commit(tx).await.expect("commit");

    let mut tx = models.begin_batch("totals", 0).await.expect("begin");
    let next = Progress {
        streams: vec![
            (stream("account-1"), Seen { version: StreamVersion(2), parked: false }),
            (stream("account-2"), Seen { version: StreamVersion(2), parked: false }),
        ],
        ..Progress::default()
    };
    assert!(models
        .record_if_seen(&mut tx, "totals", 0, &next, &[StreamVersion(1), StreamVersion(1)])
        .await
        .expect("recorded"));
    // The plan the connection keeps for the statement (EXPLAIN of the prepared statement
    // shows it without running it): every read of the streams table is an index probe.
    let name: String =
        sqlx::query_scalar("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%AS u(id, v, p, prev)%'")
            .fetch_one(tx.conn())
            .await
            .expect("the checking record is prepared");
    let explain = format!(
        "EXPLAIN EXECUTE {name}('totals', 0, '{{account-1,account-2}}', '{{2,2}}', 0, 0, 0, '{{f,f}}', NULL, NULL, '{{1,1}}')"
    );
    let plan: Vec<String> = sqlx::query_scalar(&explain).fetch_all(tx.conn()).await.expect("the plan");
    let plan = plan.join("\n");
    let scans: Vec<&str> = plan.lines().filter(|l| l.contains("Scan") && l.contains("projection_streams")).collect();
    assert!(!scans.is_empty(), "{plan}");
    assert!(scans.iter().all(|l| l.contains("Index Scan")), "a scan reads the whole projection:\n{plan}");
    models.commit(tx).await.expect("commit");
    assert_eq!(models.stream_seen("totals", &stream("account-2")).await.expect("seen"), StreamVersion(2));
}

//! The connections the store keeps warm between its statements (no ping on release):
//! they end with the pool's closing, and a statement its caller gave up on does not
//! hand its connection to the next one.

mod support;

use std::str::FromStr;
use std::time::Duration;

use futures_util::future::join_all;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tidemark::{EventStore, ExpectedVersion, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

async fn pool_of(schema: &TestSchema, max: u32) -> PgPool {
    pool_named(schema, max, "tidemark-test").await
}

/// A pool whose sessions carry `name` as their `application_name`.
async fn pool_named(schema: &TestSchema, max: u32, name: &str) -> PgPool {
    let options = PgConnectOptions::from_str(schema.url()).expect("url").application_name(name);
    PgPoolOptions::new().max_connections(max).connect_with(options).await.expect("pool")
}

async fn store_on(schema: &TestSchema, pool: PgPool, group_commit: bool) -> PgEventStore {
    let config = PgStoreConfig::default().schema(schema.name()).group_commit(group_commit);
    let store = PgEventStore::from_pool(pool, config).expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// The server's sessions named `name`, seen by a connection of its own.
async fn sessions_named(schema: &TestSchema, name: &str) -> i64 {
    let mut conn = PgConnection::connect(schema.url()).await.expect("observer");
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
    sqlx::query_scalar(sql).bind(name).fetch_one(&mut conn).await.expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pool_closes_the_kept_connections_while_the_store_lives() {
    let schema = TestSchema::new().await;
    for group_commit in [false, true] {
        let name = format!("warm-{}-{group_commit}", schema.name());
        let pool = pool_named(&schema, 4, &name).await;
        let store = store_on(&schema, pool.clone(), group_commit).await;
        let appends = (0..16).map(|i| {
            let id = format!("close-{group_commit}-{i}");
            store.append(support::append(&id, ExpectedVersion::NoStream, 2))
        });
        for outcome in join_all(appends).await {
            assert_eq!(outcome.expect("append").version, StreamVersion(2));
        }
        let first = support::stream(&format!("close-{group_commit}-0"));
        assert_eq!(store.read_stream(&first, StreamVersion(0), 10).await.expect("load").len(), 2);
        assert!(sessions_named(&schema, &name).await > 0, "the store's sessions are open before the close");

        // The store is alive and has just used its connections; the pool is closed under it.
        tokio::time::timeout(Duration::from_secs(3), pool.close()).await.expect("the pool closed within 3 s");
        let after = store.append(support::append("after-close", ExpectedVersion::Any, 1)).await;
        assert!(after.is_err(), "an append after the pool closed was answered: {after:?}");
        let loaded = store.read_stream(&first, StreamVersion(0), 10).await;
        assert!(loaded.is_err(), "a load after the pool closed was answered: {loaded:?}");
        // Kept connections end on the server too, within a bound, and not at the store's drop.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let open = sessions_named(&schema, &name).await;
            if open == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{open} sessions still open 2 s after the close");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(store);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_given_up_mid_statement_leaves_no_connection_behind_for_the_next() {
    let schema = TestSchema::new().await;
    // Two connections: one may be kept, the other is the pool's.
    let store = store_on(&schema, pool_of(&schema, 2).await, false).await;
    store.append(support::append("warm-1", ExpectedVersion::NoStream, 1)).await.expect("first append");

    // Hold every insert into the events table back, then give up on an append stuck behind it.
    let mut blocker = PgConnection::connect(schema.url()).await.expect("blocker");
    sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
    sqlx::query(&format!("LOCK TABLE {}.events IN EXCLUSIVE MODE", schema.name()))
        .execute(&mut blocker)
        .await
        .expect("lock");
    let stuck = store.append(support::append("stuck-1", ExpectedVersion::NoStream, 1));
    assert!(tokio::time::timeout(Duration::from_millis(300), stuck).await.is_err(), "the append waited on the lock");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.expect("rollback");

    // Whatever connection the abandoned statement left, every later statement gets an
    // answer of its own, in order.
    for v in 1..=20u64 {
        let outcome = store
            .append(support::append("warm-1", ExpectedVersion::Exact(StreamVersion(v)), 1))
            .await
            .expect("a later append");
        assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(v), StreamVersion(v + 1)));
        let events = store.read_stream(&support::stream("warm-1"), StreamVersion(0), 100).await.expect("load");
        assert_eq!(events.len() as u64, v + 1);
    }
    let sql = format!("SELECT count(*) FROM {}.events WHERE stream_id = 'warm-1'", schema.name());
    let stored: i64 = sqlx::query_scalar(&sql).fetch_one(&mut blocker).await.expect("count");
    assert_eq!(stored, 21);
}

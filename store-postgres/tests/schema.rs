//! Migrations and the database-enforced rules of the events table.

mod support;

use tidemark::{EventStore, ExpectedVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig, SetupError};
use tidemark_testkit::TestSchema;

/// The files of the store's and the relay's sets, the two this crate owns.
fn migration_files() -> usize {
    ["store", "relay"]
        .iter()
        .map(|set| {
            let dir = format!("{}/migrations/{set}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_dir(dir).expect("migrations dir").count()
        })
        .sum()
}

#[tokio::test]
async fn migrations_apply_twice_without_harm() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    store.migrate().await.expect("second migration run");
    let applied: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"._sqlx_migrations", schema.name()))
        .fetch_one(schema.pool())
        .await
        .expect("count migrations");
    assert_eq!(applied, migration_files() as i64);
}

#[tokio::test]
async fn pending_migrations_are_all_of_them_before_migrate_and_none_after() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    assert_eq!(store.pending_migrations().await.expect("pending").len(), migration_files());
    store.migrate().await.expect("migrate");
    assert_eq!(store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
}

#[tokio::test]
async fn events_cannot_be_updated_deleted_or_truncated() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    store.append(support::append("acct-1", ExpectedVersion::NoStream, 2)).await.expect("append");
    let s = schema.name();
    for sql in [
        format!("UPDATE \"{s}\".events SET payload = '{{}}'"),
        format!("DELETE FROM \"{s}\".events"),
        format!("TRUNCATE \"{s}\".events"),
    ] {
        let err = sqlx::query(&sql).execute(schema.pool()).await.expect_err(&sql);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("TM001"), "{sql}: {err}");
    }
    let stored = store.read_stream(&support::stream("acct-1"), tidemark::StreamVersion(1), 10).await.expect("read");
    assert_eq!(stored.len(), 2);
}

#[tokio::test]
async fn the_database_rejects_invalid_stream_ids_written_around_the_store() {
    let schema = TestSchema::new().await;
    let _store = support::store(&schema, PgStoreConfig::default()).await;
    let insert = |stream: &str| {
        format!(
            "INSERT INTO \"{}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
             VALUES (gen_random_uuid(), '{stream}', 1, 'X', 1, '{{}}')",
            schema.name()
        )
    };
    let longest = format!("a{}", "b-".repeat(63) + "c");
    assert_eq!(longest.len(), 128);
    for invalid in ["a.b", "-ab", "_ab", "", "a b", "ä", &format!("{longest}d")] {
        let err = sqlx::query(&insert(invalid)).execute(schema.pool()).await.expect_err(invalid);
        assert_eq!(err.as_database_error().and_then(|e| e.constraint()), Some("events_stream_id_check"), "{invalid}");
    }
    for valid in ["a", "A-b_9", longest.as_str()] {
        sqlx::query(&insert(valid)).execute(schema.pool()).await.expect(valid);
    }
}

#[tokio::test]
async fn schema_names_are_validated_before_any_sql() {
    let schema = TestSchema::new().await;
    let result =
        PgEventStore::from_pool(schema.pool().clone(), PgStoreConfig::default().schema("x\"; DROP TABLE y; --"));
    assert!(matches!(result, Err(SetupError::InvalidSchemaName(_))));
}

#[tokio::test]
async fn the_horizon_report_names_the_transaction_holding_the_log() {
    use sqlx::Connection;
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let mut holder = sqlx::PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut holder).await.expect("begin");
    let xid: i64 =
        sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&mut holder).await.expect("xid");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut holder).await.expect("pid");
    let report = store.log_horizon().await.expect("horizon");
    assert!(report.horizon <= xid as u64);
    let oldest = report.oldest.clone().expect("an open transaction is reported");
    // Other tests may run older transactions at the same time; ours is reported only when it is the oldest.
    if oldest.transaction_id == xid as u64 {
        assert_eq!(oldest.pid, Some(pid));
        assert_eq!(oldest.state.as_deref(), Some("idle in transaction"));
    } else {
        assert!(oldest.transaction_id < xid as u64);
    }
    assert!(!report.transaction_ids_regressed());
    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("rollback");
}

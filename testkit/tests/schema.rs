//! `TestSchema` and `TestDatabase` against the shared server: usable, isolated, gone after drop.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};
use tidemark_testkit::{postgres_url, TestDatabase, TestSchema};

/// Polls `check` until it returns true; false if it still does not after 10 s.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn count(url: &str, sql: &str, name: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connect to the shared database");
    sqlx::query_scalar(sql).bind(name).fetch_one(&mut conn).await.expect("count query")
}

const SCHEMAS: &str = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1";
const TABLES: &str = "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1";
const DATABASES: &str = "SELECT count(*) FROM pg_database WHERE datname = $1";

#[tokio::test]
async fn schema_is_created_used_and_dropped() {
    let base = postgres_url().await;
    let schema = TestSchema::new().await;
    let name = schema.name().to_owned();
    assert!(name.starts_with("tm_t_") && name.len() == 17, "{name}");
    assert_eq!(count(&base, SCHEMAS, &name).await, 1);

    // Unqualified DDL through the pool lands in the schema (search_path).
    sqlx::query("CREATE TABLE widgets (id int PRIMARY KEY)").execute(schema.pool()).await.unwrap();
    sqlx::query("INSERT INTO widgets VALUES (1), (2)").execute(schema.pool()).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM widgets").fetch_one(schema.pool()).await.unwrap();
    assert_eq!(rows, 2);
    assert_eq!(count(&base, TABLES, &name).await, 1);

    // So does a separate connection made from the schema's URL.
    let mut conn = PgConnection::connect(schema.url()).await.unwrap();
    let path: String = sqlx::query_scalar("SHOW search_path").fetch_one(&mut conn).await.unwrap();
    assert_eq!(path, name);
    drop(conn);

    drop(schema);
    assert!(eventually(|| async { count(&base, SCHEMAS, &name).await == 0 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_isolated_and_dropped_even_with_connections_open() {
    let a = TestSchema::new().await;
    let b = TestSchema::new().await;
    assert_ne!(a.name(), b.name());
    sqlx::query("CREATE TABLE t (v text)").execute(a.pool()).await.unwrap();
    sqlx::query("CREATE TABLE t (v text)").execute(b.pool()).await.unwrap();
    sqlx::query("INSERT INTO t VALUES ('a')").execute(a.pool()).await.unwrap();
    let in_b: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(b.pool()).await.unwrap();
    assert_eq!(in_b, 0);

    // A transaction left open holds a lock on the table; the drop must still succeed.
    let mut open = a.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO t VALUES ('pending')").execute(&mut *open).await.unwrap();
    std::mem::forget(open);
    let (base, name) = (postgres_url().await, a.name().to_owned());
    drop(a);
    assert!(eventually(|| async { count(&base, SCHEMAS, &name).await == 0 }).await);
}

#[test]
fn schema_drop_works_outside_a_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (schema, base) = runtime.block_on(async { (TestSchema::new().await, postgres_url().await) });
    let name = schema.name().to_owned();
    drop(runtime);
    drop(schema);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(runtime.block_on(count(&base, SCHEMAS, &name)), 0);
}

#[tokio::test]
async fn database_is_created_used_and_dropped() {
    let base = postgres_url().await;
    let db = TestDatabase::new().await;
    let name = db.name().to_owned();
    assert!(name.starts_with("tm_t_"), "{name}");
    assert_eq!(count(&base, DATABASES, &name).await, 1);

    sqlx::query("CREATE SCHEMA app").execute(db.pool()).await.unwrap();
    sqlx::query("CREATE TABLE app.t (id int)").execute(db.pool()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_database()").fetch_one(db.pool()).await.unwrap();
    assert_eq!(current, name);

    drop(db); // its pool still holds connections: WITH (FORCE) ends them
    assert!(eventually(|| async { count(&base, DATABASES, &name).await == 0 }).await);
}

//! `PgCluster`: a private server that survives being killed and stopped.

use sqlx::{Connection as _, PgConnection};
use tidemark_testkit::{PgCluster, TestSchema};

async fn count_rows(url: &str) -> Result<i64, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query_scalar("SELECT count(*) FROM kept").fetch_one(&mut conn).await
}

#[tokio::test]
async fn kill_and_restart_keep_committed_data() {
    let mut pg = PgCluster::start().await;
    let url = pg.url();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    let port = pg.port();

    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE kept (id int)").execute(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO kept VALUES (1), (2), (3)").execute(&mut conn).await.unwrap();

    pg.kill();
    assert!(!pg.is_running());
    assert!(sqlx::query("SELECT 1").execute(&mut conn).await.is_err(), "old connection survived");
    assert!(PgConnection::connect(&url).await.is_err(), "a killed server accepted a connection");

    pg.restart().await; // crash recovery
    assert_eq!(pg.port(), port);
    assert_eq!(count_rows(&url).await.unwrap(), 3);

    pg.stop().await;
    assert!(count_rows(&url).await.is_err(), "a stopped server answered");
    pg.restart().await;
    assert_eq!(count_rows(&url).await.unwrap(), 3);

    // Schemas work inside a private cluster too.
    let schema = TestSchema::new_in(&url).await;
    sqlx::query("CREATE TABLE kept (id int)").execute(schema.pool()).await.unwrap();
    assert_eq!(count_rows(schema.url()).await.unwrap(), 0);
}

#[tokio::test]
async fn dropping_a_cluster_shuts_it_down() {
    let pg = PgCluster::start().await;
    let url = pg.url();
    PgConnection::connect(&url).await.unwrap();
    drop(pg);
    assert!(PgConnection::connect(&url).await.is_err());
}

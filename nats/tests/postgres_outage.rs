//! PostgreSQL killed and restarted mid-run: the relay loses its lock connection, backs off,
//! takes the leadership again and resumes from its checkpoint.

mod support;

use std::time::Duration;

use tidemark_nats::{NatsRelay, RelayRole};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::{nats_url, PgCluster, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_survives_a_postgres_crash_and_resumes_from_its_checkpoint() {
    let mut pg = PgCluster::start().await;
    let schema = TestSchema::new_in(&pg.url()).await;
    let store = support::store(&schema).await;
    // The relay gets its own pool, as it would in its own process.
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(20));
    let relay_store = PgEventStore::connect(schema.url(), config.max_connections(4)).await.expect("relay store");
    let (scheme, settings) = support::names();
    let relay_config = support::config("main", &scheme).backoff(Duration::from_millis(100), Duration::from_millis(400));
    let client = support::client(&nats_url().await).await;
    let relay = NatsRelay::new(relay_store, client, relay_config.clone()).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");

    let head = support::append_events(&store, 0, 100, 10).await;
    let (shutdown, task) = support::spawn(&relay);
    support::wait_published(&relay, head).await;

    pg.kill();
    support::wait_until("the relay notices", || async {
        let status = relay.status();
        status.failures >= 2 && status.role != RelayRole::Leading
    })
    .await;

    pg.restart().await;
    let head = support::append_events(&store, 100, 100, 10).await;
    let status = support::wait_published(&relay, head).await;
    assert_eq!(status.leaderships, 2, "the leadership was lost with the connection and taken again: {status:?}");
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 2000);
    assert_eq!(support::stream_messages(relay.jetstream(), &settings.name).await, 2000);
    support::assert_stream_equals_log(relay.jetstream(), &settings, &relay_config, &log).await;

    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    support::delete_stream(relay.jetstream(), &settings).await;
}

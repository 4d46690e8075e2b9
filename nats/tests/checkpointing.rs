//! When the relay saves its checkpoint, and how it follows events held back behind the
//! horizon by a transaction that sends no wake-up.

mod support;

use std::time::Duration;

use sqlx::Connection;
use tidemark_nats::NatsRelay;
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::{nats_url, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_saves_what_it_acknowledged_when_it_shuts_down_between_checkpoint_saves() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let client = support::client(&nats_url().await).await;
    let (scheme, settings) = support::names();
    // Far longer than this test: no save on the interval happens while it runs.
    let config = support::config("main", &scheme).checkpoint_interval(Duration::from_secs(25));
    let relay = NatsRelay::new(store.clone(), client, config).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");
    let head = support::append_events(&store, 0, 20, 3).await;
    let (shutdown, task) = support::spawn(&relay);
    support::wait_published(&relay, head).await;
    let before = store.load_checkpoint("relay:main").await.expect("checkpoint");
    assert!(before < head, "saved before the interval passed: {before} of {head}");

    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    let log = support::read_log(&store, head).await;
    let saved = store.load_checkpoint("relay:main").await.expect("checkpoint");
    assert_eq!(saved, log[log.len() - 1].position, "the acknowledged events were not checkpointed at shutdown");
    assert_eq!(relay.status().checkpoint, Some(saved));
    support::delete_stream(relay.jetstream(), &settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_back_by_a_transaction_without_wake_up_are_published_without_waiting_for_a_poll() {
    let schema = TestSchema::new().await;
    support::store(&schema).await;
    // Polls and idle checks once a minute: only reading held-back events again, soon, can
    // publish the event within the tests' 30 s deadline.
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_secs(60));
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    let client = support::client(&nats_url().await).await;
    let (scheme, settings) = support::names();
    let relay_config = support::config("held", &scheme).idle_wait(Duration::from_secs(60));
    let relay = NatsRelay::new(store.clone(), client, relay_config).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");
    let (shutdown, task) = support::spawn(&relay);
    let first = support::append_events(&store, 0, 1, 1).await;
    support::wait_published(&relay, first).await;
    // Once the checkpoint is saved, the relay's next timer is a minute away.
    support::wait_until("the checkpoint is saved", || async {
        store.load_checkpoint("relay:held").await.expect("checkpoint") >= first
    })
    .await;

    let mut older = sqlx::PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut older).await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut older).await.expect("xid");
    let held = support::append_events(&store, 1, 1, 1).await;
    // The append's wake-up finds the event held back; the transaction then ends without
    // one (it wrote nothing). Holding it a moment lets the relay see the event held.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(relay.status().last_acked < Some(held), "published above the horizon");
    sqlx::query("COMMIT").execute(&mut older).await.expect("commit");
    support::wait_published(&relay, held).await;

    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    let log = support::read_log(&store, held).await;
    assert_eq!(support::stream_messages(relay.jetstream(), &settings.name).await, log.len() as u64);
    support::delete_stream(relay.jetstream(), &settings).await;
}

//! Two relays of one name: one publishes; the standby takes over from a killed leader.

mod support;

use std::time::Duration;

use tidemark_nats::{NatsRelay, RelayRole};
use tidemark_postgres::PgEventStore;
use tidemark_testkit::{nats_url, TestSchema};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_publishes_and_the_standby_takes_over_when_it_dies() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let url = nats_url().await;
    let (scheme, settings) = support::names();
    // The default standby poll (1 s): takeover must happen "within seconds" as configured.
    let config = support::config("main", &scheme);
    assert_eq!(config.standby_poll, Duration::from_secs(1));
    // Two processes' worth of relays: own store handles, own NATS connections.
    let other_store = PgEventStore::from_pool(schema.pool().clone(), store.config().clone()).expect("store");
    let a = NatsRelay::new(store.clone(), support::client(&url).await, config.clone()).expect("relay a");
    let b = NatsRelay::new(other_store, support::client(&url).await, config.clone()).expect("relay b");
    a.ensure_stream(&settings).await.expect("stream");

    let (_a_shutdown, a_task) = support::spawn(&a);
    support::wait_until("a leads", || async { a.status().role == RelayRole::Leading }).await;
    let (b_shutdown, b_task) = support::spawn(&b);
    support::wait_until("b stands by", || async { b.status().role == RelayRole::Standby }).await;

    let head = support::append_events(&store, 0, 150, 10).await;
    support::wait_published(&a, head).await;
    let b_status = b.status();
    assert_eq!((b_status.role, b_status.published, b_status.leaderships), (RelayRole::Standby, 0, 0));

    // Kill the leader: dropping its task drops its lock connection, as a dead process would.
    a_task.abort();
    let _ = a_task.await;
    let killed = Instant::now();
    support::wait_until("b leads", || async { b.status().role == RelayRole::Leading }).await;
    let takeover = killed.elapsed();
    assert!(takeover < Duration::from_secs(5), "takeover took {takeover:?}");

    let head = support::append_events(&store, 150, 150, 10).await;
    let status = support::wait_published(&b, head).await;
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 3000);
    assert!(status.published >= 1500, "b publishes the new events: {status:?}");
    assert_eq!(support::stream_messages(b.jetstream(), &settings.name).await, 3000);
    support::assert_stream_equals_log(b.jetstream(), &settings, &config, &log).await;
    println!("takeover after the leader was killed: {takeover:?}");

    b_shutdown.cancel();
    b_task.await.expect("joined").expect("a clean stop");
    support::delete_stream(b.jetstream(), &settings).await;
}

//! NATS killed and restarted mid-run: the relay backs off, catches up, loses nothing and
//! stores nothing twice.

mod support;

use std::time::Duration;

use tidemark_nats::NatsRelay;
use tidemark_testkit::{NatsServer, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_backs_off_while_nats_is_down_and_catches_up_after() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let mut nats = NatsServer::start().await;
    let (scheme, settings) = support::names();
    let config = support::config("main", &scheme)
        .batch_size(2000)
        .max_in_flight(1024)
        .publish_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(100), Duration::from_millis(400));
    let relay = NatsRelay::new(store.clone(), support::client(&nats.url()).await, config.clone()).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");

    let (shutdown, task) = support::spawn(&relay);
    // Two rounds, as a kill only sometimes catches publishes queued in the client; those
    // are sent after the reconnect and used to be stored ahead of earlier, lost ones.
    let mut head = None;
    for round in 0..2 {
        let acked = relay.status().acked;
        support::append_events(&store, round * 400, 300, 10).await;
        support::wait_until("the relay is publishing", || async { relay.status().acked >= acked + 200 }).await;

        // Kill NATS mid-run, write more while it is down, and see the relay fail and retry.
        nats.kill();
        println!("NATS killed at {:?}", relay.status());
        head = Some(support::append_events(&store, round * 400 + 300, 100, 10).await);
        let failures = relay.status().failures;
        support::wait_until("the relay has failed twice more", || async { relay.status().failures >= failures + 2 })
            .await;
        let stalled = relay.status();
        assert!(stalled.checkpoint < head, "stalled while NATS is down: {stalled:?}");

        nats.restart().await;
        support::wait_published(&relay, head.expect("appended")).await;
    }
    let log = support::read_log(&store, head.expect("appended")).await;
    assert_eq!(log.len(), 8000);
    assert_eq!(support::stream_messages(relay.jetstream(), &settings.name).await, 8000);
    support::assert_stream_equals_log(relay.jetstream(), &settings, &config, &log).await;

    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
}

//! A relay that restarts republishes from its checkpoint; JetStream keeps each event once.

mod support;

use tidemark_nats::NatsRelay;
use tidemark_testkit::{nats_url, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_behind_the_checkpoint_stores_each_event_once() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let url = nats_url().await;
    let (scheme, settings) = support::names();
    let config = support::config("main", &scheme);
    let first = NatsRelay::new(store.clone(), support::client(&url).await, config.clone()).expect("relay");
    first.ensure_stream(&settings).await.expect("stream");
    let head = support::append_events(&store, 0, 250, 8).await;
    let (shutdown, task) = support::spawn(&first);
    support::wait_published(&first, head).await;
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");

    // A crash after publishing but before saving: the checkpoint is 1200 events behind.
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 2000);
    store.set_checkpoint("relay:main", log[799].position).await.expect("rewind");

    let second = NatsRelay::new(store.clone(), support::client(&url).await, config.clone()).expect("relay");
    let (shutdown, task) = support::spawn(&second);
    let status = support::wait_published(&second, head).await;
    assert_eq!((status.published, status.acked, status.duplicates), (1200, 1200, 1200), "{status:?}");
    assert_eq!(support::stream_messages(second.jetstream(), &settings.name).await, 2000);
    support::assert_stream_equals_log(second.jetstream(), &settings, &config, &log).await;
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    support::delete_stream(second.jetstream(), &settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_dropped_mid_run_is_resumed_without_loss_or_duplicates() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let url = nats_url().await;
    let (scheme, settings) = support::names();
    // Small batches and a small window, so that the relay is stopped mid-way.
    let config = support::config("main", &scheme).batch_size(50).max_in_flight(8);
    let first = NatsRelay::new(store.clone(), support::client(&url).await, config.clone()).expect("relay");
    first.ensure_stream(&settings).await.expect("stream");
    let head = support::append_events(&store, 0, 300, 10).await;
    let (_shutdown, task) = support::spawn(&first);
    support::wait_until("the first relay has published a part", || async { first.status().acked >= 500 }).await;
    task.abort();
    let _ = task.await;
    let stopped_at = first.status();
    assert!(stopped_at.acked < 3000, "stopped mid-way: {stopped_at:?}");
    // A save sent just before the abort may still commit after this read; the checkpoint
    // never moves back, so the second relay resumes here or later.
    let saved = store.load_checkpoint("relay:main").await.expect("checkpoint");

    let second = NatsRelay::new(store.clone(), support::client(&url).await, config.clone()).expect("relay");
    let (shutdown, task) = support::spawn(&second);
    let status = support::wait_published(&second, head).await;
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 3000);
    let behind = log.iter().filter(|e| e.position > saved).count() as u64;
    assert!(status.published <= behind, "resumed from the checkpoint: {status:?}, {behind} behind it");
    assert!(status.published >= 3000 - stopped_at.acked, "nothing unacknowledged skipped: {status:?}");
    assert_eq!(support::stream_messages(second.jetstream(), &settings.name).await, 3000);
    support::assert_stream_equals_log(second.jetstream(), &settings, &config, &log).await;
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    support::delete_stream(second.jetstream(), &settings).await;
}

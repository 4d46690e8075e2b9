//! Every appended event reaches JetStream once, in log order, under its subject, with its headers.

mod support;

use tidemark_nats::{EventHeaders, MessageKey, NatsRelay, RelayRole, Signature};
use tidemark_testkit::{nats_url, TestSchema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_in_log_order_with_its_subject_and_headers() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let client = support::client(&nats_url().await).await;
    let (scheme, settings) = support::names();
    let config = support::config("main", &scheme).batch_size(500).max_in_flight(128);
    let relay = NatsRelay::new(store.clone(), client, config.clone()).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");

    // Half the events exist before the relay starts, half arrive while it runs.
    support::append_events(&store, 0, 150, 8).await;
    let (shutdown, task) = support::spawn(&relay);
    let head = support::append_events(&store, 150, 150, 8).await;

    let status = support::wait_published(&relay, head).await;
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 2400);
    assert_eq!(status.role, RelayRole::Leading);
    assert_eq!((status.published, status.acked, status.duplicates), (2400, 2400, 0));
    support::wait_until("the checkpoint is saved at the head", || async {
        store.load_checkpoint("relay:main").await.expect("checkpoint") == log[log.len() - 1].position
    })
    .await;
    let chained = support::assert_stream_equals_log(relay.jetstream(), &settings, &config, &log).await;
    // How many depends on how the appends fell into batches; the first of each batch expects
    // none.
    assert!(chained > 0, "messages expect their predecessor's sequence");

    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    assert_eq!(relay.status().role, RelayRole::Stopped);
    support::delete_stream(relay.jetstream(), &settings).await;
}

/// A relay that has published 10 streams of 4 events each, `Shipped` events thin; its
/// schema stays alive with it. `finish` stops it and deletes its stream.
struct ThinRun {
    _schema: TestSchema,
    store: tidemark_postgres::PgEventStore,
    relay: NatsRelay,
    config: tidemark_nats::RelayConfig,
    settings: tidemark_nats::StreamSettings,
    head: tidemark::LogPosition,
    stop: (tokio_util::sync::CancellationToken, tokio::task::JoinHandle<tidemark_nats::Result<()>>),
}

impl ThinRun {
    async fn published(name: &str) -> Self {
        let schema = TestSchema::new().await;
        let store = support::store(&schema).await;
        let client = support::client(&nats_url().await).await;
        let (scheme, settings) = support::names();
        let config = support::config(name, &scheme).thin("Shipped");
        let relay = NatsRelay::new(store.clone(), client, config.clone()).expect("relay");
        relay.ensure_stream(&settings).await.expect("stream");
        let head = support::append_events(&store, 0, 10, 4).await;
        let stop = support::spawn(&relay);
        support::wait_published(&relay, head).await;
        Self { _schema: schema, store, relay, config, settings, head, stop }
    }

    async fn messages(&self) -> Vec<async_nats::jetstream::Message> {
        support::read_stream(self.relay.jetstream(), &self.settings.name).await
    }

    async fn finish(self) {
        let (shutdown, task) = self.stop;
        shutdown.cancel();
        task.await.expect("joined").expect("a clean stop");
        support::delete_stream(self.relay.jetstream(), &self.settings).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thin_event_types_carry_headers_only_and_are_fetched_by_id() {
    let run = ThinRun::published("thin").await;
    let log = support::read_log(&run.store, run.head).await;
    support::assert_stream_equals_log(run.relay.jetstream(), &run.settings, &run.config, &log).await;
    let messages = run.messages().await;
    let thin: Vec<_> = messages.iter().filter(|m| m.payload.is_empty()).collect();
    assert_eq!(thin.len(), log.iter().filter(|e| e.event_type == "Shipped").count());
    assert!(!thin.is_empty());
    for message in thin {
        let headers = EventHeaders::parse(message.headers.as_ref()).expect("headers");
        assert!(headers.thin && headers.event_type == "Shipped");
        let event = run.store.read_event(headers.event_id).await.expect("read").expect("stored");
        assert_eq!(EventHeaders::of(&event).with_thin(true), headers);
    }
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_signed_with_the_store_key() {
    let run = ThinRun::published("signing").await;
    let key = MessageKey::load(&run.store).await.expect("the store's key");
    let another = MessageKey::from_secret(&[1; 32]).expect("key");
    let messages = run.messages().await;
    assert_eq!(messages.len(), 40);
    assert!(messages.iter().any(|m| m.payload.is_empty()), "thin messages are signed too");
    for message in &messages {
        assert_eq!(key.verify(message.headers.as_ref(), &message.payload), Signature::Valid, "{message:?}");
        assert_eq!(another.verify(message.headers.as_ref(), &message.payload), Signature::Invalid);
    }
    // A store migrated on its own has a key of its own.
    let elsewhere = TestSchema::new().await;
    let other_store = support::store(&elsewhere).await;
    let other_key = MessageKey::load(&other_store).await.expect("the other store's key");
    assert_eq!(other_key.verify(messages[0].headers.as_ref(), &messages[0].payload), Signature::Invalid);
    run.finish().await;
}

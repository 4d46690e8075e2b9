//! Shared set-up of the relay's integration tests: a store in a fresh schema, a NATS
//! client, a unique stream and prefix, events over many streams, and a JetStream reader.
#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use tidemark::{AppendRequest, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, RecordedEvent, StreamId};
use tidemark_nats::{EventHeaders, NatsRelay, RelayConfig, RelayStatus, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::{unique_name, TestSchema};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long any condition in these tests may take to come true.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A migrated store in a fresh schema, polling fast. Also sends the relay's logs to the
/// test output (`RUST_LOG=tidemark_nats=debug` for more).
pub(crate) async fn store(schema: &TestSchema) -> PgEventStore {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "tidemark_nats=info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(20));
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// A client that reconnects quickly (for tests that restart the server).
pub(crate) async fn client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(url)
        .await
        .expect("connect to NATS")
}

/// A unique subject prefix and stream name for one test.
pub(crate) fn names() -> (SubjectScheme, StreamSettings) {
    let name = unique_name("relay");
    let scheme = SubjectScheme::new(format!("t.{}", name.to_lowercase()), 4).expect("scheme");
    let settings = StreamSettings::new(name).max_age(Duration::from_secs(600));
    (scheme, settings)
}

/// A relay configuration that retries quickly.
pub(crate) fn config(name: &str, scheme: &SubjectScheme) -> RelayConfig {
    RelayConfig::new(name)
        .subjects(scheme.clone())
        .idle_wait(Duration::from_millis(200))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// Runs a relay in a task until the returned token is cancelled.
pub(crate) fn spawn(relay: &NatsRelay) -> (CancellationToken, JoinHandle<tidemark_nats::Result<()>>) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (relay, shutdown) = (relay.clone(), shutdown.clone());
        async move { relay.run(shutdown).await }
    });
    (shutdown, task)
}

const CATEGORIES: [&str; 3] = ["order", "invoice", "shipment"];
const TYPES: [(&str, u32); 4] = [("Placed", 1), ("Paid", 2), ("Shipped", 1), ("Noted_it-x", 3)];

/// Appends `per_stream` events to each of `streams` new streams (ids start at `first`), 8
/// appends at a time, with varied categories, types, versions and metadata. Returns the
/// largest log position written.
pub(crate) async fn append_events(
    store: &PgEventStore,
    first: usize,
    streams: usize,
    per_stream: usize,
) -> LogPosition {
    let ids: Vec<usize> = (first..first + streams).collect();
    let appends = futures_util::stream::iter(ids).map(|n| {
        let store = store.clone();
        async move { store.append(request(n, per_stream)).await.expect("append") }
    });
    let outcomes: Vec<_> = appends.buffer_unordered(8).collect().await;
    outcomes.iter().filter_map(|o| o.last_position).max().expect("appended")
}

fn request(n: usize, per_stream: usize) -> AppendRequest {
    let stream = StreamId::for_entity(CATEGORIES[n % CATEGORIES.len()], n).expect("stream id");
    let events = (0..per_stream).map(|i| {
        let (event_type, version) = TYPES[(n + i) % TYPES.len()];
        let payload = RawValue::from_string(format!(r#"{{"stream":{n},"i":{i},"text":"x y"}}"#)).expect("json");
        let mut metadata = Metadata::new().with_correlation_id(Uuid::now_v7());
        if i > 0 {
            metadata = metadata.with_causation_id(Uuid::now_v7());
        }
        if n % 5 == 0 {
            metadata = metadata.with_user(format!(" user {n}\r\n100% ")).with_tenant("tenant-ü");
        }
        NewEvent::new(event_type, version, payload).with_metadata(metadata)
    });
    AppendRequest::new(stream, ExpectedVersion::NoStream, events.collect())
}

/// The log from its start through `through`. Transactions of other tests in the shared
/// cluster may hold the readable horizon back for a moment: wait for it.
pub(crate) async fn read_log(store: &PgEventStore, through: LogPosition) -> Vec<RecordedEvent> {
    let read = tidemark::read_log_through(store, through, 5000, DEADLINE).await.expect("read log");
    read.unwrap_or_else(|| panic!("the log did not become readable through {through}"))
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
pub(crate) async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tidemark_testkit::wait_until(what, DEADLINE, condition).await;
}

/// Waits until the relay has acknowledged every event through `through`.
pub(crate) async fn wait_published(relay: &NatsRelay, through: LogPosition) -> RelayStatus {
    wait_until("the relay has published the log", || async { relay.status().last_acked >= Some(through) }).await;
    relay.status()
}

/// Deletes a test's stream from the shared server (on success; a failed test leaves it
/// behind for inspection, with its messages expiring after ten minutes).
pub(crate) async fn delete_stream(jetstream: &Context, settings: &StreamSettings) {
    jetstream.delete_stream(&settings.name).await.expect("delete stream");
}

/// Number of messages in the stream.
pub(crate) async fn stream_messages(jetstream: &Context, stream: &str) -> u64 {
    let mut stream = jetstream.get_stream(stream).await.expect("stream");
    stream.info().await.expect("stream info").state.messages
}

/// Every message of the stream, in stream order, through an ordered consumer.
pub(crate) async fn read_stream(jetstream: &Context, stream: &str) -> Vec<jetstream::Message> {
    let count = stream_messages(jetstream, stream).await;
    let stream = jetstream.get_stream(stream).await.expect("stream");
    let consumer = stream.create_consumer(OrderedConfig::default()).await.expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut all = Vec::new();
    while (all.len() as u64) < count {
        let next = tokio::time::timeout(DEADLINE, messages.next()).await.expect("a message in time");
        all.push(next.expect("stream open").expect("message"));
    }
    all
}

/// Checks that the stream holds exactly the log: each event once, in log order, under its
/// subject, with its headers and payload, each message that expects a predecessor
/// (`Nats-Expected-Last-Sequence`) stored right after it. Returns how many messages expect
/// one.
pub(crate) async fn assert_stream_equals_log(
    jetstream: &Context,
    settings: &StreamSettings,
    relay: &RelayConfig,
    log: &[RecordedEvent],
) -> usize {
    let messages = read_stream(jetstream, &settings.name).await;
    let header =
        |m: &jetstream::Message, name: &str| m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.to_string());
    let ids: HashSet<_> = messages.iter().map(|m| header(m, "Nats-Msg-Id")).collect();
    assert_eq!(ids.len(), messages.len(), "every message id is distinct");
    assert_eq!(messages.len(), log.len(), "the stream holds as many messages as the log has events");
    let mut chained = 0;
    for (i, (message, event)) in messages.iter().zip(log).enumerate() {
        let headers = EventHeaders::parse(message.headers.as_ref()).expect("tidemark headers");
        let thin = relay.thin_event_types.contains(&event.event_type);
        assert_eq!(headers, EventHeaders::of(event).with_thin(thin), "headers at {}", event.position);
        assert_eq!(message.subject.as_str(), relay.subjects.subject_of(event).expect("subject"));
        let payload = if thin { "" } else { event.payload.get() };
        assert_eq!(std::str::from_utf8(&message.payload).expect("utf-8"), payload, "payload at {}", event.position);
        assert_eq!(header(message, "Nats-Expected-Last-Msg-Id"), None, "the relay chains by sequence");
        if let Some(previous) = header(message, "Nats-Expected-Last-Sequence") {
            assert!(i > 0, "the first message expects no predecessor");
            let sequence = |m: &jetstream::Message| m.info().expect("message info").stream_sequence;
            assert_eq!(previous, sequence(&messages[i - 1]).to_string(), "predecessor of {}", event.position);
            assert_eq!(sequence(message), sequence(&messages[i - 1]) + 1);
            chained += 1;
        }
    }
    chained
}

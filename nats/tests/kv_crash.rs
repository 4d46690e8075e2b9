//! A KV projection run by a projection runner that is aborted at random points, dozens of
//! times, while events are appended: once the kills stop, every key of the bucket (read
//! with a plain async-nats KV client) equals its stream's state at its head as computed from
//! the store's events by plain SQL, with no key missing and none extra.

#[path = "kv/counter.rs"]
mod counter;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Store;
use async_nats::jetstream::Context;
use counter::{evolve, Counter, CounterEvent};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::value::RawValue;
use tidemark::{AppendRequest, EventCodec, EventStore, ExpectedVersion, NewEvent, StreamId};
use tidemark_nats::{ensure_kv_bucket, ConsumerSettings, JetStreamFeed, KvProjection, NatsRelay};
use tidemark_postgres::PgEventStore;
use tidemark_projections::{ProjectionRunner, RebuildOptions, RebuildOutcome, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::{nats_url, unique_name, TestSchema};
use tokio_util::sync::CancellationToken;

const STREAMS: usize = 30;
/// How long events are appended while the runner is killed.
const LOAD_FOR: Duration = Duration::from_secs(20);
/// How long the bucket may take to be right once the kills stop.
const SETTLE: Duration = Duration::from_secs(60);

type Runner = ProjectionRunner<KvProjection<CounterEvent, Counter>, PgReadModels, PgEventStore, JetStreamFeed>;

/// Appends one to three events to a random counter, a fifth of the time closing it.
async fn append_some(store: &PgEventStore) {
    let (n, count, close, amount) = {
        let mut rng = rand::thread_rng();
        (rng.gen_range(0..STREAMS), rng.gen_range(1..=3), rng.gen_bool(0.2), rng.gen_range(-50..100i64))
    };
    let stream = StreamId::for_entity("counter", n).expect("id");
    let mut events: Vec<NewEvent> = (0..count)
        .map(|i| {
            let payload = RawValue::from_string(format!(r#"{{"amount":{}}}"#, amount + i)).expect("json");
            NewEvent::new("Added", 1, payload)
        })
        .collect();
    if close {
        events.push(NewEvent::new("Closed", 1, RawValue::from_string("{}".into()).expect("json")));
    }
    store.append(AppendRequest::new(stream, ExpectedVersion::Any, events)).await.expect("append");
}

/// Each stream's document at its head, folded from the events table read by plain SQL
/// (absent when its last event closed it).
async fn expected(schema: &TestSchema) -> BTreeMap<String, Counter> {
    let sql = format!(
        "SELECT stream_id, event_type, coalesce((payload->>'amount')::bigint, 0) FROM {}.events \
         ORDER BY stream_id, stream_version",
        schema.name()
    );
    let rows: Vec<(String, String, i64)> = sqlx::query_as(&sql).fetch_all(schema.pool()).await.expect("events");
    let mut states: BTreeMap<String, Option<Counter>> = BTreeMap::new();
    for (stream, event_type, amount) in rows {
        let state = states.entry(stream).or_default();
        *state = match event_type.as_str() {
            "Added" => Some(state.take().unwrap_or_default().add(amount)),
            _ => None,
        };
    }
    states.into_iter().filter_map(|(stream, state)| state.map(|s| (stream, s))).collect()
}

/// Every live key of the bucket and its document, with the plain client.
async fn actual(store: &Store) -> BTreeMap<String, Counter> {
    let keys: Vec<String> = store.keys().await.expect("keys").map(|k| k.expect("key")).collect().await;
    let mut documents = BTreeMap::new();
    for key in keys {
        if let Some(value) = store.get(&key).await.expect("get") {
            documents.insert(key, serde_json::from_slice(&value).expect("a counter"));
        }
    }
    documents
}

/// A runner of the KV projection over the test's stream, bucket and read models.
struct Parts {
    store: PgEventStore,
    read_models: PgReadModels,
    jetstream: Context,
    bucket: Store,
}

fn runner(parts: &Parts, feed: JetStreamFeed) -> Runner {
    let Parts { store, read_models, jetstream, bucket } = parts;
    let jetstream = jetstream.clone();
    let codec = EventCodec::without_upcasters().expect("codec");
    let projection = KvProjection::new("kv_crash", codec, jetstream, bucket.clone(), evolve).expect("projection");
    let config = RunnerConfig::default()
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .lag_interval(Duration::ZERO);
    ProjectionRunner::new(projection, read_models.clone(), store.clone(), feed, config).expect("runner")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_again_and_again_leaves_every_key_at_its_streams_head() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let client = support::client(&nats_url().await).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let (scheme, settings) = support::names();
    let relay = NatsRelay::new(store.clone(), client.clone(), support::config("kv", &scheme)).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");
    let (stop_relay, relaying) = support::spawn(&relay);
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("projection migrations");
    let bucket = ensure_kv_bucket(&jetstream, &unique_name("kvc")).await.expect("bucket");
    let feed = || {
        let consumers = ConsumerSettings::default().inactive_threshold(Duration::from_secs(5));
        JetStreamFeed::new(jetstream.clone(), settings.name.clone(), scheme.clone()).with_settings(consumers)
    };
    let parts = Parts { store: store.clone(), read_models, jetstream: jetstream.clone(), bucket: bucket.clone() };
    runner(&parts, feed()).set_up().await.expect("set up");

    let loading = tokio::spawn({
        let store = store.clone();
        async move {
            let started = Instant::now();
            while started.elapsed() < LOAD_FOR {
                append_some(&store).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let mut kills = 0;
    while !loading.is_finished() {
        let runner = runner(&parts, feed());
        let running = tokio::spawn(async move { runner.run(CancellationToken::new()).await });
        let alive = Duration::from_millis(rand::thread_rng().gen_range(20..600));
        tokio::time::sleep(alive).await;
        running.abort();
        let _ = running.await;
        kills += 1;
    }
    loading.await.expect("load");
    assert!(kills >= 40, "only {kills} kills in {LOAD_FOR:?}");
    let published = actual(&bucket).await.len();
    assert!(published > 0, "the killed runners published nothing: the test would only check a clean catch-up");

    let runner = runner(&parts, feed());
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { runner.run(stop).await }
    });
    let want = expected(&schema).await;
    assert!(want.len() > STREAMS / 2, "too few live counters to compare: {}", want.len());
    let deadline = Instant::now() + SETTLE;
    let mut got = actual(&bucket).await;
    while got != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        got = actual(&bucket).await;
    }
    assert_eq!(got, want, "the bucket differs from the store after {kills} kills");
    println!("{kills} kills; {published} keys published while killing; {} live keys right", want.len());

    stop.cancel();
    running.await.expect("joined").expect("a clean stop");
    stop_relay.cancel();
    relaying.await.expect("joined").expect("relay");
    jetstream.delete_key_value(&bucket.name).await.expect("delete bucket");
    support::delete_stream(&jetstream, &settings).await;
}

/// The guide's way to rewrite a bucket: purge it and rebuild the projection. Every key is
/// written again from the log, equal to its stream's head by plain SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_bucket_is_written_again_by_a_rebuild() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let client = support::client(&nats_url().await).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let (scheme, settings) = support::names();
    let relay = NatsRelay::new(store.clone(), client.clone(), support::config("kv", &scheme)).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");
    let (stop_relay, relaying) = support::spawn(&relay);
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("projection migrations");
    let bucket = ensure_kv_bucket(&jetstream, &unique_name("kvb")).await.expect("bucket");
    let feed = || JetStreamFeed::new(jetstream.clone(), settings.name.clone(), scheme.clone());
    let parts = Parts { store: store.clone(), read_models, jetstream: jetstream.clone(), bucket: bucket.clone() };
    for _ in 0..200 {
        append_some(&store).await;
    }
    let want = expected(&schema).await;
    assert!(!want.is_empty(), "some counters are open");

    // Live: the runner brings the bucket to the store's state.
    let live = runner(&parts, feed());
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { live.run(stop).await }
    });
    let deadline = Instant::now() + SETTLE;
    while actual(&bucket).await != want {
        assert!(Instant::now() < deadline, "the live runner did not bring the bucket to the store's state");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    running.await.expect("joined").expect("a clean stop");

    // Purged with the plain client, then rebuilt: every key is back, at its stream's head.
    let keys: Vec<String> = bucket.keys().await.expect("keys").map(|k| k.expect("key")).collect().await;
    for key in &keys {
        bucket.purge(key).await.expect("purge");
    }
    assert!(actual(&bucket).await.is_empty(), "the bucket is empty after the purge");
    let outcome = runner(&parts, feed()).rebuild(RebuildOptions::default(), &mut |_| {}).await.expect("rebuild");
    assert!(matches!(outcome, RebuildOutcome::Completed { .. }), "{outcome:?}");
    assert_eq!(actual(&bucket).await, want, "the rebuild wrote every key again from the log");

    stop_relay.cancel();
    relaying.await.expect("joined").expect("relay");
    jetstream.delete_key_value(&bucket.name).await.expect("delete bucket");
    support::delete_stream(&jetstream, &settings).await;
}

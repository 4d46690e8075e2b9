//! A KV projection's key never goes back: events applied again, late or out of order
//! leave it as it is, a delete keeps its version, and a value written by something else is
//! refused with a typed error. The bucket is read back with a plain async-nats KV client.

#[path = "kv/counter.rs"]
mod counter;

use async_nats::jetstream::kv::Store;
use async_nats::jetstream::Context;
use chrono::Utc;
use counter::{evolve, Added, Closed, Counter, CounterEvent};
use tidemark::{Envelope, EventCodec, EventId, LogPosition, Metadata, StreamId, StreamVersion};
use tidemark_nats::{ensure_kv_bucket, KvError, KvProjection};
use tidemark_projections::{MemoryReadModels, Projection, ReadModels};
use tidemark_testkit::{nats_url, unique_name};

type Kv = KvProjection<CounterEvent, Counter>;

async fn bucket() -> (Context, Store) {
    let client = async_nats::connect(nats_url().await).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let store = ensure_kv_bucket(&jetstream, &unique_name("kvr")).await.expect("bucket");
    (jetstream, store)
}

fn envelope(stream: &StreamId, version: u64, event: CounterEvent) -> Envelope<CounterEvent> {
    Envelope {
        event_id: EventId::new(),
        stream_id: stream.clone(),
        stream_version: StreamVersion(version),
        position: LogPosition::new(version, version),
        metadata: Metadata::new(),
        recorded_at: Utc::now(),
        event,
    }
}

fn added(stream: &StreamId, version: u64, amount: i64) -> Envelope<CounterEvent> {
    envelope(stream, version, CounterEvent::Added(Added { amount }))
}

async fn apply(projection: &Kv, events: &[Envelope<CounterEvent>]) -> Result<(), tidemark_projections::ApplyError> {
    let read_models = MemoryReadModels::new();
    let mut tx = read_models.begin().await.expect("begin");
    Projection::<MemoryReadModels>::apply_batch(projection, &mut tx, events).await
}

/// The key's document and revision, read with the plain client.
async fn read(store: &Store, key: &str) -> Option<(Counter, u64)> {
    let entry = store.entry(key).await.expect("entry")?;
    let value = store.get(key).await.expect("get")?;
    Some((serde_json::from_slice(&value).expect("a counter"), entry.revision))
}

fn projection(jetstream: &Context, store: &Store) -> Kv {
    let codec = EventCodec::without_upcasters().expect("codec");
    KvProjection::new("kv_replay", codec, jetstream.clone(), store.clone(), evolve).expect("projection")
}

#[tokio::test]
async fn events_applied_again_late_or_out_of_order_never_move_a_key_back() {
    let (jetstream, store) = bucket().await;
    let kv = projection(&jetstream, &store);
    let stream = StreamId::new("counter-1").expect("id");
    let first = [added(&stream, 1, 5), added(&stream, 2, 7), added(&stream, 3, 1)];
    apply(&kv, &first).await.expect("apply");
    let right = Counter::default().add(5).add(7).add(1);
    let (document, revision) = read(&store, "counter-1").await.expect("the key");
    assert_eq!(document, right);

    // The whole batch again, then a part of it: nothing is written.
    apply(&kv, &first).await.expect("apply again");
    apply(&kv, &first[1..2]).await.expect("apply a late event");
    assert_eq!(read(&store, "counter-1").await, Some((right.clone(), revision)));

    // Version 5 arrives before version 4: 4 comes too late and changes nothing.
    apply(&kv, &[added(&stream, 5, 100)]).await.expect("apply 5");
    let at_five = right.add(100);
    let (_, revision) = read(&store, "counter-1").await.expect("the key");
    apply(&kv, &[added(&stream, 4, 40)]).await.expect("apply 4");
    assert_eq!(read(&store, "counter-1").await, Some((at_five, revision)));
    jetstream.delete_key_value(&store.name).await.expect("delete bucket");
}

#[tokio::test]
async fn a_deleted_key_keeps_its_version_and_a_replay_does_not_bring_it_back() {
    let (jetstream, store) = bucket().await;
    let kv = projection(&jetstream, &store);
    let stream = StreamId::new("counter-2").expect("id");
    let events = [added(&stream, 1, 3), added(&stream, 2, 4), envelope(&stream, 3, CounterEvent::Closed(Closed {}))];
    apply(&kv, &events).await.expect("apply");
    assert_eq!(store.get("counter-2").await.expect("get"), None, "closed: the key is deleted");
    let deleted = store.entry("counter-2").await.expect("entry").expect("a delete marker").revision;

    apply(&kv, &events[..2]).await.expect("replay");
    assert_eq!(store.get("counter-2").await.expect("get"), None, "a replay brought the key back");
    assert_eq!(store.entry("counter-2").await.expect("entry").expect("marker").revision, deleted);

    // A later event recreates it from nothing.
    apply(&kv, &[added(&stream, 4, 9)]).await.expect("reopen");
    assert_eq!(read(&store, "counter-2").await.map(|(c, _)| c), Some(Counter::default().add(9)));
    jetstream.delete_key_value(&store.name).await.expect("delete bucket");
}

#[tokio::test]
async fn a_value_written_by_something_else_is_refused_and_kept() {
    let (jetstream, store) = bucket().await;
    let kv = projection(&jetstream, &store);
    store.put("counter-3", "not ours".into()).await.expect("put");
    let stream = StreamId::new("counter-3").expect("id");
    let error = apply(&kv, &[added(&stream, 1, 1)]).await.expect_err("a foreign value");
    let error = error.downcast_ref::<KvError>().expect("a KV error");
    assert!(matches!(error, KvError::Foreign { key, .. } if key == "counter-3"), "{error:?}");
    assert_eq!(store.get("counter-3").await.expect("get").as_deref(), Some(&b"not ours"[..]));
    jetstream.delete_key_value(&store.name).await.expect("delete bucket");
}

#[tokio::test]
async fn an_invalid_name_is_a_typed_error() {
    let (jetstream, store) = bucket().await;
    let codec = EventCodec::without_upcasters().expect("codec");
    let error = Kv::new("no spaces", codec, jetstream.clone(), store.clone(), evolve).expect_err("invalid name");
    assert!(matches!(error, KvError::InvalidName(_)), "{error:?}");
    jetstream.delete_key_value(&store.name).await.expect("delete bucket");
}

#[tokio::test]
async fn a_bucket_that_cannot_be_reached_is_a_transient_failure_not_a_poison_event() {
    let mut server = tidemark_testkit::NatsServer::start().await;
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(std::time::Duration::from_millis(500)))
        .connect(server.url())
        .await
        .expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    let store = ensure_kv_bucket(&jetstream, "OUTAGE").await.expect("bucket");
    let kv = projection(&jetstream, &store);
    let stream = StreamId::new("counter-4").expect("id");
    apply(&kv, &[added(&stream, 1, 1)]).await.expect("apply while up");

    server.kill();
    let error = apply(&kv, &[added(&stream, 2, 2)]).await.expect_err("the server is down");
    let kv_error = error.downcast_ref::<KvError>().expect("a KV error");
    assert!(matches!(kv_error, KvError::Unavailable { .. }), "{kv_error:?}");
    assert!(tidemark_projections::is_connection_loss(error.as_ref()), "the runner would count it towards poison");

    server.restart().await;
    let again = [added(&stream, 2, 2)];
    let deadline = std::time::Duration::from_secs(30);
    tidemark_testkit::wait_until("the write succeeds once the server is back", deadline, || async {
        apply(&kv, &again).await.is_ok()
    })
    .await;
    assert_eq!(read(&store, "counter-4").await.map(|(c, _)| c), Some(Counter::default().add(1).add(2)));
}

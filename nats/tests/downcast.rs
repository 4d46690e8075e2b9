//! Dual publishing: while a downcaster is active, each event of its type and version is
//! followed by a downcast copy on the older version's subject; after its date, nothing is;
//! a failed downcast leaves out only the copy.

mod support;

use std::collections::HashSet;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::{self, Context};
use chrono::{TimeDelta, Utc};
use futures_util::StreamExt;
use serde_json::Value;
use tidemark::RecordedEvent;
use tidemark_nats::{Downcaster, EventHeaders, NatsRelay, RelayConfig, RelayRole, StreamSettings, HEADER_MSG_ID};
use tidemark_postgres::PgEventStore;
use tidemark_testkit::{nats_url, TestSchema};

/// `Paid` v2 to v1: `text` was called `note`; payloads with an even `i` fail when `fail_even`.
fn paid_v2_to_v1(until: chrono::DateTime<Utc>, fail_even: bool) -> Downcaster {
    Downcaster::new("Paid", 2, 1, until, move |mut payload| {
        if fail_even && payload["i"].as_u64().is_some_and(|i| i % 2 == 0) {
            return Err(format!("cannot downcast {payload}"));
        }
        let object = payload.as_object_mut().ok_or("not an object")?;
        let text = object.remove("text").ok_or("no text")?;
        object.insert("note".to_owned(), text);
        Ok(payload)
    })
}

fn json(event: &RecordedEvent) -> Value {
    serde_json::from_str(event.payload.get()).expect("stored JSON")
}

/// The expected copy of an event: its payload, when the downcaster makes one.
fn expected_copy(downcaster: &Downcaster, event: &RecordedEvent) -> Option<Value> {
    let applies = event.event_type == downcaster.event_type() && event.schema_version == downcaster.from_version();
    applies.then(|| downcaster.apply(json(event)).ok()).flatten()
}

struct Run {
    store: PgEventStore,
    relay: NatsRelay,
    config: RelayConfig,
    settings: StreamSettings,
    log: Vec<RecordedEvent>,
}

/// Publishes 480 events (a quarter of them `Paid` v2) with `downcaster`, half appended
/// before the relay starts and half while it runs, and stops the relay once it has
/// published and checkpointed them all.
async fn run(schema: &TestSchema, downcaster: Downcaster) -> Run {
    let store = support::store(schema).await;
    let client = support::client(&nats_url().await).await;
    let (scheme, settings) = support::names();
    // Small batches and window, so that events and their copies straddle both.
    let config = support::config("dual", &scheme).batch_size(64).max_in_flight(5).downcast(downcaster);
    let relay = NatsRelay::new(store.clone(), client, config.clone()).expect("relay");
    relay.ensure_stream(&settings).await.expect("stream");
    support::append_events(&store, 0, 40, 6).await;
    let (shutdown, task) = support::spawn(&relay);
    let head = support::append_events(&store, 40, 40, 6).await;
    support::wait_published(&relay, head).await;
    let log = support::read_log(&store, head).await;
    assert_eq!(log.len(), 480);
    let last = log[log.len() - 1].position;
    support::wait_until("the checkpoint is saved at the head", || async {
        store.load_checkpoint("relay:dual").await.expect("checkpoint") == last
    })
    .await;
    assert_eq!(relay.status().role, RelayRole::Leading);
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    Run { store, relay, config, settings, log }
}

/// Checks that the stream holds each event, each followed by its expected downcast copy
/// if any, once, in log order, each message naming its predecessor when it names one.
/// Returns the number of copies.
async fn assert_stream(run: &Run, downcaster: &Downcaster) -> usize {
    let messages = support::read_stream(run.relay.jetstream(), &run.settings.name).await;
    let header = |m: &jetstream::Message, name| m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.to_string());
    let ids: HashSet<_> = messages.iter().map(|m| header(m, HEADER_MSG_ID)).collect();
    assert_eq!(ids.len(), messages.len(), "every message id is distinct");
    let mut next = messages.iter();
    let mut copies = 0;
    for event in &run.log {
        let message = next.next().expect("a message for every event");
        assert_eq!(EventHeaders::parse(message.headers.as_ref()).expect("headers"), EventHeaders::of(event));
        assert_eq!(message.subject.as_str(), run.config.subjects.subject_of(event).expect("subject"));
        assert_eq!(std::str::from_utf8(&message.payload).expect("utf-8"), event.payload.get());
        let Some(payload) = expected_copy(downcaster, event) else { continue };
        let copy = next.next().expect("a copy after the event");
        let headers = EventHeaders::parse(copy.headers.as_ref()).expect("copy headers");
        assert_eq!(headers, EventHeaders::of(event).downcast_to(1), "copy of {}", event.position);
        assert_eq!((headers.schema_version, headers.downcast_of), (1, Some(2)));
        assert_eq!(header(copy, HEADER_MSG_ID), Some(format!("{}:v1", event.event_id)));
        let subject = run.config.subjects.subject(&event.stream_id, "Paid", 1).expect("subject");
        assert_eq!(copy.subject.as_str(), subject);
        assert_eq!(serde_json::from_slice::<Value>(&copy.payload).expect("copy JSON"), payload);
        copies += 1;
    }
    assert!(next.next().is_none(), "nothing but events and their copies");
    // Copies are part of the chain: a message expecting a predecessor follows it.
    let sequence = |m: &jetstream::Message| m.info().expect("message info").stream_sequence;
    for (i, message) in messages.iter().enumerate().skip(1) {
        if let Some(previous) = header(message, "Nats-Expected-Last-Sequence") {
            assert_eq!(previous, sequence(&messages[i - 1]).to_string(), "predecessor of message {i}");
        }
    }
    copies
}

/// Every message a consumer filtered on `filter` receives.
async fn read_filtered(jetstream: &Context, stream: &str, filter: String) -> Vec<jetstream::Message> {
    let stream = jetstream.get_stream(stream).await.expect("stream");
    let config = OrderedConfig { filter_subject: filter, ..OrderedConfig::default() };
    let consumer = stream.create_consumer(config).await.expect("ordered consumer");
    let count = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.expect("messages");
    let mut all = Vec::new();
    while (all.len() as u64) < count {
        let next = tokio::time::timeout(support::DEADLINE, messages.next()).await.expect("a message in time");
        all.push(next.expect("stream open").expect("message"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_downcaster_publishes_each_event_also_on_the_older_subject_once() {
    let schema = TestSchema::new().await;
    let downcaster = paid_v2_to_v1(Utc::now() + TimeDelta::hours(1), false);
    let run = run(&schema, downcaster.clone()).await;
    let paid: Vec<_> = run.log.iter().filter(|e| e.event_type == "Paid").collect();
    assert!(paid.len() >= 100 && paid.iter().all(|e| e.schema_version == 2));

    let status = run.relay.status();
    assert_eq!((status.published, status.acked, status.duplicates), (480, 480, 0), "{status:?}");
    assert_eq!((status.downcasts, status.downcast_failures, status.failures), (paid.len() as u64, 0, 0));
    assert_eq!(status.last_acked, Some(run.log[479].position));
    assert_eq!(assert_stream(&run, &downcaster).await, paid.len());

    // An old consumer of v1 gets every Paid event, downcast; a new one of v2 the originals.
    let (jetstream, scheme) = (run.relay.jetstream(), &run.config.subjects);
    let v1 = read_filtered(jetstream, &run.settings.name, scheme.event_type_filter("Paid", 1).expect("filter")).await;
    let v2 = read_filtered(jetstream, &run.settings.name, scheme.event_type_filter("Paid", 2).expect("filter")).await;
    let ids = |messages: &[jetstream::Message]| -> Vec<_> {
        let headers = messages.iter().map(|m| EventHeaders::parse(m.headers.as_ref()).expect("headers"));
        headers.map(|h| (h.event_id, h.schema_version, h.downcast_of)).collect()
    };
    assert_eq!(ids(&v1), paid.iter().map(|e| (e.event_id, 1, Some(2))).collect::<Vec<_>>());
    assert_eq!(ids(&v2), paid.iter().map(|e| (e.event_id, 2, None)).collect::<Vec<_>>());
    for (message, event) in v1.iter().zip(&paid) {
        let mut expected = json(event);
        let object = expected.as_object_mut().expect("object");
        let text = object.remove("text").expect("text");
        object.insert("note".to_owned(), text);
        assert_eq!(serde_json::from_slice::<Value>(&message.payload).expect("JSON"), expected);
    }

    // Republishing from behind the checkpoint stores neither events nor copies twice.
    run.store.set_checkpoint("relay:dual", run.log[99].position).await.expect("rewind");
    let client = support::client(&nats_url().await).await;
    let again = NatsRelay::new(run.store.clone(), client, run.config.clone()).expect("relay");
    let (shutdown, task) = support::spawn(&again);
    let status = support::wait_published(&again, run.log[479].position).await;
    let copies_behind = paid.iter().filter(|e| e.position > run.log[99].position).count() as u64;
    assert_eq!((status.published, status.duplicates, status.downcasts), (380, 380, copies_behind), "{status:?}");
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    let total = support::stream_messages(jetstream, &run.settings.name).await;
    assert_eq!(total, (480 + paid.len()) as u64, "no message stored twice");
    support::delete_stream(jetstream, &run.settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_deprecation_date_a_downcaster_publishes_nothing() {
    let schema = TestSchema::new().await;
    let downcaster = paid_v2_to_v1(Utc::now() - TimeDelta::minutes(1), false);
    let run = run(&schema, downcaster).await;
    let status = run.relay.status();
    assert_eq!((status.published, status.acked, status.downcasts, status.downcast_failures), (480, 480, 0, 0));
    support::assert_stream_equals_log(run.relay.jetstream(), &run.settings, &run.config, &run.log).await;
    let filter = run.config.subjects.event_type_filter("Paid", 1).expect("filter");
    assert!(read_filtered(run.relay.jetstream(), &run.settings.name, filter).await.is_empty());
    support::delete_stream(run.relay.jetstream(), &run.settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_downcast_leaves_out_only_its_copy() {
    let schema = TestSchema::new().await;
    let downcaster = paid_v2_to_v1(Utc::now() + TimeDelta::hours(1), true);
    let run = run(&schema, downcaster.clone()).await;
    let paid = run.log.iter().filter(|e| e.event_type == "Paid");
    let (copied, refused): (Vec<_>, Vec<_>) = paid.partition(|e| json(e)["i"].as_u64().is_some_and(|i| i % 2 == 1));
    assert!(!copied.is_empty() && !refused.is_empty());

    let status = run.relay.status();
    assert_eq!((status.published, status.acked, status.failures), (480, 480, 0), "{status:?}");
    assert_eq!((status.downcasts, status.downcast_failures), (copied.len() as u64, refused.len() as u64));
    assert_eq!(status.last_acked, Some(run.log[479].position));
    assert_eq!(assert_stream(&run, &downcaster).await, copied.len());
    let filter = run.config.subjects.event_type_filter("Paid", 1).expect("filter");
    let v1 = read_filtered(run.relay.jetstream(), &run.settings.name, filter).await;
    let ids: Vec<_> = v1.iter().map(|m| EventHeaders::parse(m.headers.as_ref()).expect("headers").event_id).collect();
    assert_eq!(ids, copied.iter().map(|e| e.event_id).collect::<Vec<_>>());
    support::delete_stream(run.relay.jetstream(), &run.settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_jetstream_refuses_holds_the_checkpoint_before_its_event() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema).await;
    let client = support::client(&nats_url().await).await;
    let (scheme, settings) = support::names();
    let until = Utc::now() + TimeDelta::hours(1);
    let oversize = Downcaster::new("Paid", 2, 1, until, |mut payload| {
        payload["pad"] = Value::String("x".repeat(4096));
        Ok(payload)
    });
    let config = support::config("refused", &scheme).downcast(oversize);
    let relay = NatsRelay::new(store.clone(), client, config).expect("relay");
    // The server takes every event but refuses every copy: too large for the stream.
    let mut stream = relay.ensure_stream(&settings).await.expect("stream").config;
    stream.max_message_size = 2048;
    relay.jetstream().update_stream(stream).await.expect("limit message size");
    // The first stream's events are Placed, Paid, Shipped, Noted_it-x, first in the log.
    support::append_events(&store, 0, 1, 4).await;
    let head = support::append_events(&store, 1, 10, 4).await;
    let log = support::read_log(&store, head).await;
    assert_eq!((log[0].event_type.as_str(), log[1].event_type.as_str()), ("Placed", "Paid"));

    let (shutdown, task) = support::spawn(&relay);
    support::wait_until("the relay has retried the refused copy", || async { relay.status().failures >= 3 }).await;
    let status = relay.status();
    assert_eq!(status.last_acked, Some(log[0].position), "the Paid event is not acknowledged: {status:?}");
    assert!(status.acked >= 2 && status.downcasts == 0, "its message was, its copy never: {status:?}");
    assert_eq!(store.load_checkpoint("relay:refused").await.expect("checkpoint"), log[0].position);
    shutdown.cancel();
    task.await.expect("joined").expect("a clean stop");
    assert_eq!(support::stream_messages(relay.jetstream(), &settings.name).await, 2, "Placed and Paid, once");
    support::delete_stream(relay.jetstream(), &settings).await;
}

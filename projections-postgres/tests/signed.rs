//! Messages signed with the store's key: a `JetStreamFeed` holding the key takes an event
//! whose signature verifies as stored, without asking the store; a message signed with
//! another key, or changed after signing, or not signed at all, is checked against the
//! store as before, and parked when the store does not hold it.

mod support;

use async_nats::HeaderMap;
use metrics_exporter_prometheus::PrometheusBuilder;
use tidemark::{EventId, EventStore, LogPosition, StreamVersion};
use tidemark_nats::{EventHeaders, MessageKey, RelayConfig, HEADER_SIGNATURE};

use support::nats::{spawn_relay, spawn_runner, Bench, PgRunner};
use support::{append_rounds, read_log, replay, stream, tallies, wait_until, Tally};

const STREAMS: usize = 4;

/// Headers of an event the store does not hold: a `Deposited` at the next version of
/// stream `n`, under a fresh id.
async fn unstored(bench: &Bench, n: usize) -> EventHeaders {
    let version = bench.store.stream_version(&stream(n)).await.expect("version");
    let mut event = bench.store.read_stream(&stream(n), version, 1).await.expect("read").pop().expect("an event");
    event.event_id = EventId::new();
    event.stream_version = StreamVersion(event.stream_version.0 + 1);
    event.event_type = "Deposited".to_owned();
    event.schema_version = 1;
    event.position = LogPosition::new(u64::MAX / 4, 1);
    EventHeaders::of(&event)
}

async fn publish(bench: &Bench, headers: &EventHeaders, map: HeaderMap, payload: &'static [u8]) {
    let subject =
        bench.scheme.subject(&headers.stream_id, &headers.event_type, headers.schema_version).expect("subject");
    let ack = bench.jetstream().publish_with_headers(subject, map, payload.into()).await.expect("publish");
    assert!(!ack.await.expect("ack").duplicate, "the server took the message in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_messages_signed_with_the_store_key_skip_the_check_against_the_store() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let runner: PgRunner = bench.runner("signed", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let appended = append_rounds(&bench.store, STREAMS, 2, 5).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    for outcome in &appended {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("the relay's events arrive");
    }
    let head = appended.iter().filter_map(|o| o.last_position).max().expect("events appended");
    let before = replay(&read_log(&bench.store, head).await);
    assert_eq!(tallies(&bench.read_models, runner.projection()).await, before);

    // 1. Signed with another key: checked, and parked (the store holds no such event).
    let other = MessageKey::from_secret(&[42; 32]).expect("key");
    let foreign = unstored(&bench, 1).await;
    let mut map = foreign.to_header_map();
    other.sign(&mut map, br#"{"amount":500}"#);
    publish(&bench, &foreign, map, br#"{"amount":500}"#).await;
    // 2. Signed with the store's key, then changed: checked, and parked.
    let changed = unstored(&bench, 2).await;
    let mut map = changed.to_header_map();
    bench.key.sign(&mut map, br#"{"amount":1}"#);
    publish(&bench, &changed, map, br#"{"amount":600}"#).await;
    // 3. Not signed: checked, and parked.
    let unsigned = unstored(&bench, 3).await;
    publish(&bench, &unsigned, unsigned.to_header_map(), br#"{"amount":700}"#).await;
    // 4. Signed with the store's key: the feed vouches for it, so the runner takes it in
    //    as it would a stored event. (Only a process that can read the store's schema can
    //    make such a message; this test is one.)
    let vouched = unstored(&bench, 0).await;
    let mut map = vouched.to_header_map();
    bench.key.sign(&mut map, br#"{"amount":800}"#);
    assert!(map.get(HEADER_SIGNATURE).is_some());
    publish(&bench, &vouched, map, br#"{"amount":800}"#).await;

    wait_until("the three messages that fail the check are parked", || async {
        runner.rogue_messages().await.expect("rogue").len() == 3
    })
    .await;
    let rogue = runner.rogue_messages().await.expect("rogue messages");
    for claimed in [foreign.event_id, changed.event_id, unsigned.event_id] {
        let found = rogue.iter().filter(|m| m.event_id == Some(claimed)).count();
        assert_eq!(found, 1, "{claimed} parked once: {rogue:#?}");
    }
    let mut expected = before.clone();
    let tally = expected.get_mut(vouched.stream_id.as_str()).expect("stream 0 has a tally");
    *tally = Tally { events: tally.events + 1, balance: tally.balance + 800, version: vouched.stream_version.0 };
    wait_until("the signed event is applied", || async {
        tallies(&bench.read_models, runner.projection()).await == expected
    })
    .await;
    // Counted by signature: the relay's events and the vouched one valid, two invalid, one missing.
    let text = metrics.render();
    let count = |signature: &str| -> u64 {
        let line = format!("tidemark_feed_signatures_total{{signature=\"{signature}\"}} ");
        let found = text.lines().find_map(|l| l.strip_prefix(line.as_str()));
        found.map_or(0, |n| n.trim().parse().expect("a count"))
    };
    let relayed = read_log(&bench.store, head).await.len() as u64;
    assert!(count("valid") > relayed, "valid {} of {relayed} relayed + 1:\n{text}", count("valid"));
    assert_eq!((count("invalid"), count("missing")), (2, 1), "{text}");

    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_without_the_key_checks_signed_messages_against_the_store() {
    let bench = Bench::new(1).await;
    bench.relay(RelayConfig::new("main")).await; // creates the stream; never run
    let runner: PgRunner = bench.runner("unkeyed", bench.feed_without_key()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    append_rounds(&bench.store, 1, 1, 3).await;
    let signed = unstored(&bench, 0).await;
    let mut map = signed.to_header_map();
    bench.key.sign(&mut map, br#"{"amount":5}"#);
    publish(&bench, &signed, map, br#"{"amount":5}"#).await;
    wait_until("the message is parked", || async { runner.rogue_messages().await.expect("rogue").len() == 1 }).await;
    let rogue = runner.rogue_messages().await.expect("rogue messages");
    assert_eq!(rogue[0].event_id, Some(signed.event_id));
    assert!(rogue[0].reason.contains("the store holds no event there"), "{rogue:#?}");
    assert!(tallies(&bench.read_models, runner.projection()).await.is_empty(), "nothing applied");
    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

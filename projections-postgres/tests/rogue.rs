//! Rogue messages published straight to the subjects a `JetStreamFeed` consumes, between
//! valid events of several streams: every valid event reaches the read model once and in
//! order, each rogue message is parked with its reason, no stream is held back, the runner
//! keeps running, and the ops CLI and the metrics show them until `dlq skip --rogue`.

mod support;

use async_nats::HeaderMap;
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use tidemark::{AppendOutcome, EventId, EventStore, LogPosition, RecordedEvent, StreamVersion};
use tidemark_nats::{EventHeaders, NatsRelay, RelayConfig, HEADER_MSG_ID};
use tidemark_projections::{DeadLetterStatus, Ops, OpsCommand, OpsExit};

use support::nats::{spawn_relay, spawn_runner, Bench, PgRunner};
use support::{append_rounds, read_log, replay, stream, tallies, wait_until};

const STREAMS: usize = 6;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    ops: OpsCommand,
}

async fn ops(ops: &Ops<tidemark_postgres::PgEventStore>, args: &[&str]) -> (OpsExit, String) {
    let cli = Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied())).expect("valid arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = ops.run(&cli.ops, &mut out, &mut err).await;
    (exit, String::from_utf8(out).expect("utf-8") + &String::from_utf8(err).expect("utf-8"))
}

/// Runs the relay until it has published every event the appends wrote (the readable
/// head may lag behind them while other transactions run on the server).
async fn relay_burst(relay: &NatsRelay, appends: &[AppendOutcome]) {
    let through = appends.iter().filter_map(|o| o.last_position).max().expect("events appended");
    let (stop, task) = spawn_relay(relay);
    wait_until("the relay has published the appends", || async { relay.status().last_acked >= Some(through) }).await;
    stop.cancel();
    task.await.expect("joined").expect("clean stop");
}

/// Publishes a message as is; returns nothing the server did not accept.
async fn publish(bench: &Bench, subject: String, headers: HeaderMap, payload: &'static [u8]) {
    let ack = bench.jetstream().publish_with_headers(subject, headers, payload.into()).await.expect("publish");
    assert!(!ack.await.expect("ack").duplicate, "the server took the rogue message in");
}

/// The last stored event of stream `n`.
async fn last_event(bench: &Bench, n: usize) -> RecordedEvent {
    let version = bench.store.stream_version(&stream(n)).await.expect("version");
    bench.store.read_stream(&stream(n), version, 1).await.expect("read").pop().expect("an event")
}

/// Headers of an event that does not exist: the next version of stream `n`, a fresh id.
async fn forged(bench: &Bench, n: usize, event_type: &str, schema_version: u32) -> EventHeaders {
    let mut event = last_event(bench, n).await;
    event.event_id = EventId::new();
    event.stream_version = StreamVersion(event.stream_version.0 + 1);
    event.event_type = event_type.to_owned();
    event.schema_version = schema_version;
    event.position = LogPosition::new(u64::MAX / 4, 1);
    EventHeaders::of(&event)
}

fn subject_of(bench: &Bench, headers: &EventHeaders) -> String {
    bench.scheme.subject(&headers.stream_id, &headers.event_type, headers.schema_version).expect("subject")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_messages_are_parked_with_their_reason_and_nothing_valid_is_lost() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let bench = Bench::new(4).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let runner: PgRunner = bench.runner("rogue", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let first = append_rounds(&bench.store, STREAMS, 1, 5).await;
    relay_burst(&relay, &first).await;

    // 1. No headers at all.
    let bare = format!("{}.0.account.Deposited.v1", bench.scheme.prefix());
    publish(&bench, bare, HeaderMap::new(), br#"{"amount":5}"#).await;
    // 2. A payload that is not JSON, under headers of an event that does not exist.
    let garbage = forged(&bench, 0, "Deposited", 1).await;
    publish(&bench, subject_of(&bench, &garbage), garbage.to_header_map(), b"\xff not json").await;
    // 3. An event type no one knows, at a stream's next version: taken as "not handled",
    //    it would mark that version seen and the real event would be dropped as a duplicate.
    let unknown = forged(&bench, 1, "Mystery", 1).await;
    publish(&bench, subject_of(&bench, &unknown), unknown.to_header_map(), b"{}").await;
    // 4. A schema version the projection cannot read: taken in, it would park the stream.
    let unsupported = forged(&bench, 2, "Deposited", 9).await;
    publish(&bench, subject_of(&bench, &unsupported), unsupported.to_header_map(), br#"{"amount":1}"#).await;
    // 5. A stored stream version under another event id.
    let mut taken = EventHeaders::of(&last_event(&bench, 3).await);
    taken.event_id = EventId::new();
    publish(&bench, subject_of(&bench, &taken), taken.to_header_map(), br#"{"amount":1000}"#).await;
    // 6. A valid-looking event on the subject of another partition.
    let elsewhere = forged(&bench, 4, "Deposited", 1).await;
    let home = bench.scheme.partition_of(&elsewhere.stream_id);
    let other = format!("{}.{}.account.Deposited.v1", bench.scheme.prefix(), (home + 1) % 4);
    publish(&bench, other, elsewhere.to_header_map(), br#"{"amount":1}"#).await;

    let mut second = append_rounds(&bench.store, STREAMS, 1, 5).await;
    // 7. Headers that disagree with a stored event, published under its id before the
    //    relay publishes it: the server then drops the relay's message as a duplicate.
    second.extend(append_rounds(&bench.store, 1, 1, 1).await);
    let real = last_event(&bench, 0).await;
    let mut disagreeing = EventHeaders::of(&real);
    disagreeing.event_type = "Withdrawn".to_owned();
    let mut headers = disagreeing.to_header_map();
    headers.insert(HEADER_MSG_ID, real.event_id.to_string().as_str());
    publish(&bench, subject_of(&bench, &disagreeing), headers, br#"{"amount":999}"#).await;
    relay_burst(&relay, &second).await;
    assert!(relay.status().duplicates >= 1, "the relay's message for {} was dropped", real.event_id);

    let outcomes: Vec<AppendOutcome> = append_rounds(&bench.store, STREAMS, 1, 5).await;
    relay_burst(&relay, &outcomes).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("every stream caught up");
    }

    // Every valid event, once and in order (the tally projection refuses anything else).
    let head = outcomes.iter().filter_map(|o| o.last_position).max().expect("events appended");
    let log = read_log(&bench.store, head).await;
    assert_eq!(tallies(&bench.read_models, runner.projection()).await, replay(&log));
    assert!(runner.dead_letters().await.expect("dead letters").is_empty(), "no stream was parked");
    assert!(!runner_task.is_finished(), "the runner keeps running");

    // Each rogue message parked, with its reason.
    wait_until("all seven rogue messages are recorded", || async {
        runner.rogue_messages().await.expect("rogue").len() == 7
    })
    .await;
    let rogue = runner.rogue_messages().await.expect("rogue messages");
    let reason_of = |needle: &str| rogue.iter().filter(|m| m.reason.contains(needle)).count();
    assert_eq!(reason_of("not a tidemark event: missing header Nats-Msg-Id"), 1, "{rogue:#?}");
    assert_eq!(reason_of("the payload is not JSON"), 1, "{rogue:#?}");
    for claimed in [unknown.event_id, unsupported.event_id, taken.event_id] {
        assert_eq!(reason_of(&format!("claims to be event {claimed}")), 1, "{claimed}: {rogue:#?}");
    }
    assert_eq!(reason_of(&format!("belongs to partition {home}")), 1, "{rogue:#?}");
    assert_eq!(reason_of(&format!("headers disagree with the stored event {}: Withdrawn", real.event_id)), 1);
    assert!(rogue.iter().all(|m| m.status == DeadLetterStatus::Parked));
    assert_eq!(runner.status().totals.rogue, 7);

    // Visible to an operator, and cleared by one.
    let ops_over = Ops::new(bench.store.clone()).projection(runner.clone()).non_interactive();
    let (exit, listed) = ops(&ops_over, &["dlq", "list", "--json"]).await;
    assert_eq!((exit, listed.lines().filter(|l| l.contains(r#""kind":"rogue""#)).count()), (OpsExit::Done, 7));
    let (_, status) = ops(&ops_over, &["projections", "status", "--json"]).await;
    assert!(status.contains(r#""parked":7,"skipped":0,"rogue":7"#), "{status}");
    let key = rogue[0].key.clone();
    let (exit, one) = ops(&ops_over, &["dlq", "skip", "rogue", "--rogue", "--key", &key, "--yes"]).await;
    assert_eq!((exit, one.trim()), (OpsExit::Done, "rogue: skipped 1 rogue messages"));
    let (exit, rest) = ops(&ops_over, &["dlq", "skip", "rogue", "--rogue", "--yes"]).await;
    assert_eq!((exit, rest.trim()), (OpsExit::Done, "rogue: skipped 6 rogue messages"));
    let (_, status) = ops(&ops_over, &["projections", "status", "--json"]).await;
    assert!(status.contains(r#""parked":0,"skipped":7,"rogue":0"#), "{status}");
    let text = metrics.render();
    let counted = "tidemark_projection_events_total{projection=\"rogue\",outcome=\"rogue\"} 7";
    assert!(text.contains(counted), "{counted} missing from:\n{text}");

    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

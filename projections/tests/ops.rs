//! The ops commands as an application mounts them: parsed by clap, run over the
//! application's projections, codecs and store.

mod support;

use clap::Parser;
use serde_json::value::RawValue;
use tidemark::{AppendRequest, EventCodec, EventStore, ExpectedVersion, InMemoryEventStore, NewEvent, StreamId};
use tidemark_projections::{InProcessBus, MemoryReadModels, Ops, OpsCommand, OpsExit, ProjectionRunner, RunnerConfig};

use support::{append_rounds, built_by, LedgerEvent, TallyProjection};

/// An application's command line with the ops commands mounted.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    ops: OpsCommand,
}

struct App {
    store: InMemoryEventStore,
    read_models: MemoryReadModels,
    ops: Ops<InMemoryEventStore>,
}

fn app() -> App {
    let store = InMemoryEventStore::new();
    let read_models = MemoryReadModels::new();
    let bus = InProcessBus::new(2).expect("bus");
    let runner = ProjectionRunner::new(
        TallyProjection::new("ledger"),
        read_models.clone(),
        store.clone(),
        bus,
        RunnerConfig::default(),
    )
    .expect("runner");
    let codec = EventCodec::<LedgerEvent>::without_upcasters().expect("codec");
    let ops = Ops::new(store.clone()).projection(runner).codec(codec).non_interactive();
    App { store, read_models, ops }
}

async fn run(app: &App, args: &[&str]) -> (OpsExit, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied())).expect("valid arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = app.ops.run(&cli.ops, &mut out, &mut err).await;
    (exit, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

#[tokio::test]
async fn events_verify_passes_on_known_events_and_catches_one_no_upcaster_covers() {
    let app = app();
    append_rounds(&app.store, 4, 2, 5).await;
    // `Noted` events belong to no codec here: mount one that knows them.
    let (exit, out, _) = run(&app, &["events", "verify"]).await;
    assert_eq!(exit, OpsExit::Problems, "{out}");
    assert!(out.contains("no codec knows the event type \"Noted\""), "{out}");

    let stream = StreamId::new("account-77").expect("id");
    let payload = RawValue::from_string(r#"{"amount":5}"#.to_owned()).expect("json");
    let future = NewEvent::new("Deposited", 9, payload);
    app.store.append(AppendRequest::new(stream, ExpectedVersion::NoStream, vec![future])).await.expect("append");
    let (exit, out, _) = run(&app, &["events", "verify", "--json"]).await;
    assert_eq!(exit, OpsExit::Problems);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let failures = report["failures"].as_array().expect("failures");
    let unknown = failures.iter().find(|f| f["stream_id"] == "account-77").expect("the v9 event failed");
    assert_eq!((unknown["event_type"].as_str(), unknown["schema_version"].as_u64()), (Some("Deposited"), Some(9)));
    assert_eq!(report["failed"].as_u64(), Some(failures.len() as u64));
}

#[tokio::test]
async fn rebuild_needs_yes_without_a_terminal_then_builds_and_status_reports_it() {
    let app = app();
    append_rounds(&app.store, 3, 1, 4).await;
    let (exit, out, _) = run(&app, &["projections", "list"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "ledger\n"));

    let (exit, _, err) = run(&app, &["projections", "rebuild", "ledger"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, None, "nothing was built");

    let (exit, out, _) = run(&app, &["projections", "rebuild", "ledger", "--yes", "--batch-size", "5"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    assert!(out.contains("rebuilt ledger: 12 events"), "{out}");
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, Some(1));

    let (exit, out, _) = run(&app, &["projections", "rebuild", "ledger", "--stream", "account-1", "--yes"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "rebuilt account-1 in ledger: 4 events applied\n"));

    let (exit, out, _) = run(&app, &["projections", "status", "--json"]).await;
    assert_eq!(exit, OpsExit::Done);
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!((status["name"].as_str(), status["built_version"].as_u64()), (Some("ledger"), Some(1)));
    assert_eq!((status["parked"].as_u64(), status["skipped"].as_u64()), (Some(0), Some(0)));

    let (exit, _, err) = run(&app, &["projections", "reset", "nope", "--yes"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("no projection named \"nope\""), "{err}");
    let (exit, _, _) = run(&app, &["projections", "reset", "ledger", "--yes"]).await;
    assert_eq!(exit, OpsExit::Done);
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, None, "the read model is gone");
}

#[tokio::test]
async fn stream_show_prints_the_stored_events_and_rejects_an_invalid_id() {
    let app = app();
    append_rounds(&app.store, 1, 1, 3).await;
    let (exit, out, _) = run(&app, &["stream", "show", "account-0", "--json"]).await;
    assert_eq!(exit, OpsExit::Done);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let versions: Vec<u64> = lines.iter().map(|l| l["stream_version"].as_u64().expect("version")).collect();
    assert_eq!(versions, vec![1, 2, 3]);
    let (exit, _, err) = run(&app, &["stream", "show", "not a stream id"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("error"), "{err}");
}

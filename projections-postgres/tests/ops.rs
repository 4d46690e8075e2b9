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

    let (exit, out, _) = run(&app, &["projections", "list", "--json"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "{\"projection\":\"ledger\"}\n"));

    let (exit, _, err) = run(&app, &["projections", "rebuild", "ledger"]).await;
    assert_eq!((exit, exit.code()), (OpsExit::Refused, 2));
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, None, "nothing was built");

    let (exit, out, _) = run(&app, &["projections", "rebuild", "ledger", "--yes", "--batch-size", "5"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    assert!(out.contains("rebuilt ledger: 12 events"), "{out}");
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, Some(1));

    let (exit, out, _) = run(&app, &["projections", "rebuild", "ledger", "--stream", "account-1", "--yes"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "rebuilt account-1 in ledger: 4 events applied\n"));
    let args = ["projections", "rebuild", "ledger", "--stream", "account-1", "--yes", "--json"];
    let (exit, out, _) = run(&app, &args).await;
    let rebuilt: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(
        (exit, rebuilt["stream_id"].as_str(), rebuilt["applied"].as_u64()),
        (OpsExit::Done, Some("account-1"), Some(4))
    );

    let (exit, out, _) = run(&app, &["projections", "status", "--json"]).await;
    assert_eq!(exit, OpsExit::Done);
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!((status["name"].as_str(), status["built_version"].as_u64()), (Some("ledger"), Some(1)));
    assert_eq!((status["parked"].as_u64(), status["skipped"].as_u64()), (Some(0), Some(0)));

    let (exit, _, err) = run(&app, &["projections", "reset", "nope", "--yes"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("no projection named \"nope\""), "{err}");
    let (exit, _, err) = run(&app, &["projections", "reset", "ledger"]).await;
    assert_eq!(exit, OpsExit::Refused, "{err}");
    assert_eq!(built_by(&app.read_models, &TallyProjection::new("ledger")).await, Some(1), "refused: still there");
    let (exit, out, _) = run(&app, &["projections", "reset", "ledger", "--yes", "--json"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "{\"outcome\":\"reset\",\"projection\":\"ledger\"}\n"));
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
    let (exit, out, err) = run(&app, &["stream", "show", "account-404"]).await;
    assert_eq!((exit, exit.code(), out.as_str()), (OpsExit::Failed, 3, ""));
    assert!(err.contains("account-404 has no events"), "{err}");
}

#[tokio::test]
async fn dlq_skip_needs_yes_without_a_terminal_and_every_dlq_command_speaks_json() {
    let app = app();
    let (exit, _, err) = run(&app, &["dlq", "skip", "ledger", "account-1"]).await;
    assert_eq!((exit, exit.code()), (OpsExit::Refused, 2));
    assert!(err.contains("refusing without --yes"), "{err}");
    let (exit, _, err) = run(&app, &["dlq", "skip", "ledger", "--rogue"]).await;
    assert_eq!(exit, OpsExit::Refused, "{err}");
    let (exit, out, _) = run(&app, &["dlq", "skip", "ledger", "account-1", "--yes", "--json"]).await;
    let skipped: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!((exit, skipped["skipped"].as_u64()), (OpsExit::Done, Some(0)), "nothing was parked");
    let (exit, out, _) = run(&app, &["dlq", "retry", "ledger", "account-1", "--json"]).await;
    let retried: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!((exit, retried["applied"].as_u64()), (OpsExit::Done, Some(0)));
}

/// Appends `count` events to `stream` (any version).
async fn append_to<S: EventStore>(store: &S, stream: &str, count: usize) {
    let stream = StreamId::new(stream).expect("id");
    let request = AppendRequest::new(stream, ExpectedVersion::Any, support::events(0, 0, count));
    store.append(request).await.expect("append");
}

/// Makes `projection` claim to have seen `stream` up to `version`, as a read model of
/// another store would.
async fn claim_seen<R: tidemark_projections::ReadModels>(
    read_models: &R,
    projection: &str,
    stream: &str,
    version: u64,
) {
    let seen = tidemark_projections::Seen { version: tidemark::StreamVersion(version), parked: false };
    let progress = tidemark_projections::Progress {
        streams: vec![(StreamId::new(stream).expect("id"), seen)],
        ..Default::default()
    };
    let mut tx = read_models.begin().await.expect("begin");
    read_models.record(&mut tx, projection, 0, &progress).await.expect("record");
    read_models.commit(tx).await.expect("commit");
}

/// `projections audit --json` and `projections status --json` of `ledger`, after a rebuild
/// (everything current), then with one stream behind, one missing and one ahead.
async fn audit_finds_what_is_behind_missing_and_ahead<S, R>(ops: &Ops<S>, store: &S, read_models: &R)
where
    S: EventStore + tidemark::LogDiagnostics + Clone + 'static,
    R: tidemark_projections::ReadModelsAdmin,
{
    let run = |args: &'static [&'static str]| async move {
        let cli = Cli::try_parse_from(std::iter::once("app").chain(args.iter().copied())).expect("valid arguments");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = ops.run(&cli.ops, &mut out, &mut err).await;
        let out = String::from_utf8(out).expect("utf-8");
        let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        (exit, json, out + &String::from_utf8(err).expect("utf-8"))
    };
    append_rounds(store, 3, 1, 4).await;
    let (exit, _, out) = run(&["projections", "rebuild", "ledger", "--yes"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    let (exit, report, out) = run(&["projections", "audit", "ledger", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    let counts = |r: &serde_json::Value| ["streams", "current", "behind", "missing", "ahead"].map(|k| r[k].as_u64());
    assert_eq!(counts(&report), [Some(3), Some(3), Some(0), Some(0), Some(0)], "{report}");
    let (_, status, out) = run(&["projections", "status", "--json"]).await;
    assert_eq!((status["lag_events"].as_u64(), status["lag_exact"].as_bool()), (Some(0), Some(true)), "{out}");
    assert_eq!(status["lag_seconds"].as_f64(), Some(0.0), "{out}");

    append_to(store, "account-1", 1).await;
    append_to(store, "account-9", 2).await;
    claim_seen(read_models, "ledger", "account-404", 3).await;
    let (exit, report, out) = run(&["projections", "audit", "ledger", "--json"]).await;
    assert_eq!(exit, OpsExit::Problems, "{out}");
    assert_eq!(counts(&report), [Some(4), Some(2), Some(1), Some(1), Some(1)], "{report}");
    let findings: Vec<(&str, &str, u64, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default();
            (text("kind"), text("stream_id"), f["applied"].as_u64().unwrap_or(99), f["head"].as_u64().unwrap_or(99))
        })
        .collect();
    assert_eq!(
        findings,
        [("behind", "account-1", 4, 5), ("ahead", "account-404", 3, 0), ("missing", "account-9", 0, 2)]
    );
    let (_, status, out) = run(&["projections", "status", "--json"]).await;
    assert_eq!(status["lag_events"].as_u64(), Some(3), "{out}");
    assert!(status["lag_seconds"].as_f64().unwrap_or_default() > 0.0, "{out}");
    let (exit, _, out) = run(&["projections", "audit", "ledger"]).await;
    assert_eq!(exit, OpsExit::Problems);
    assert!(out.contains("behind  account-1  applied v4, store at v5"), "{out}");
}

#[tokio::test]
async fn audit_and_status_in_memory() {
    let app = app();
    audit_finds_what_is_behind_missing_and_ahead(&app.ops, &app.store, &app.read_models).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_and_status_on_postgres() {
    let bench = support::nats::Bench::new(2).await;
    let runner = ProjectionRunner::new(
        TallyProjection::new("ledger"),
        bench.read_models.clone(),
        bench.store.clone(),
        InProcessBus::new(2).expect("bus"),
        RunnerConfig::default(),
    )
    .expect("runner");
    let ops = Ops::new(bench.store.clone()).projection(runner).non_interactive();
    audit_finds_what_is_behind_missing_and_ahead(&ops, &bench.store, &bench.read_models).await;
}

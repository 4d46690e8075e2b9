//! `projections replay` on PostgreSQL applies again, in place, what a projection took in
//! after a log position or since a time, and leaves what it has not taken in to its
//! runner; `projections rebuild --all` rebuilds every projection after one confirmation.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use clap::Parser;
use tidemark::{Envelope, EventCodec, RecordedEvent};
use tidemark_projections::{
    ApplyError, DocumentReader, DocumentTx, Ops, OpsExit, Projection, ReadModels, ReadModelsAdmin,
};
use tidemark_projections_postgres::PgReadModels;

use support::deployment::{json, run, Cli, Deployment};
use support::{append_rounds, read_log, wait_until, LedgerEvent, TallyProjection};

/// Writes, for every event, the current `label` under the event's stream and version:
/// idempotent, and shows which events the code applied last.
struct Stamp {
    label: Arc<AtomicU32>,
    codec: EventCodec<LedgerEvent>,
}

impl<R> Projection<R> for Stamp
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "stamp"
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let key = format!("{}@{}", event.stream_id, event.stream_version.0);
        tx.put_as("stamps", &key, &self.label.load(Ordering::SeqCst)).await
    }
}

async fn label_of(read_models: &PgReadModels, event: &RecordedEvent) -> Option<u32> {
    let key = format!("{}@{}", event.stream_id, event.stream_version.0);
    let found = read_models.document("stamp", "stamps", &key).await.expect("read a stamp");
    found.map(|v| serde_json::from_value(v).expect("a label"))
}

/// Per event of `log`, `label(i)` for the events the projection handles, `None` for the
/// others.
fn expected(log: &[RecordedEvent], label: impl Fn(usize) -> u32) -> Vec<Option<u32>> {
    log.iter().enumerate().map(|(i, e)| (e.event_type != "Noted").then(|| label(i))).collect()
}

async fn labels(read_models: &PgReadModels, log: &[RecordedEvent]) -> Vec<Option<u32>> {
    let mut labels = Vec::with_capacity(log.len());
    for event in log {
        labels.push(label_of(read_models, event).await);
    }
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_applies_again_what_was_taken_in_after_a_position_or_since_a_time() {
    let deployment = Deployment::new().await;
    let label = Arc::new(AtomicU32::new(1));
    let stamp = Stamp { label: label.clone(), codec: EventCodec::without_upcasters().expect("codec") };
    let runner = deployment.runner(stamp).await;
    let ops = Ops::new(deployment.store.clone()).projection(runner.clone()).non_interactive();
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), deployment.stop.clone());
        async move { runner.run(stop).await }
    });
    let outcomes = append_rounds(&deployment.store, 4, 3, 2).await;
    let last = outcomes.iter().filter_map(|o| o.last_position).max().expect("appended");
    let log = read_log(&deployment.store, last).await;
    let all_one = expected(&log, |_| 1);
    wait_until("the runner stamps every event", || async { labels(&deployment.read_models, &log).await == all_one })
        .await;
    deployment.stop.cancel();
    running.await.expect("joined").expect("clean stop");

    // New code (label 2); events appended while no runner runs are not taken in.
    label.store(2, Ordering::SeqCst);
    let outcomes = append_rounds(&deployment.store, 2, 1, 1).await;
    let newest = outcomes.iter().filter_map(|o| o.last_position).max().expect("appended");
    read_log(&deployment.store, newest).await;
    let cut = log.len() / 2;
    let from = log[cut - 1].position.to_string();
    let (exit, _, err) = run(&ops, &["projections", "replay", "stamp", "--from", &from]).await;
    assert_eq!(exit, OpsExit::Refused, "{err}");
    assert_eq!(labels(&deployment.read_models, &log).await, all_one, "refused: nothing replayed");

    let (exit, out, err) = run(&ops, &["projections", "replay", "stamp", "--from", &from, "--yes", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    let report = json(&out);
    let handled = log[cut..].iter().filter(|e| e.event_type != "Noted").count() as u64;
    let not_handled = (log.len() - cut) as u64 - handled;
    assert_eq!((report["after"].as_str(), report["applied"].as_u64()), (Some(from.as_str()), Some(handled)), "{out}");
    assert_eq!(report["skipped"].as_u64(), Some(not_handled), "{out}");
    assert_eq!(report["not_taken_in"].as_u64(), Some(2), "the two new events are left to the runner: {out}");
    let want = expected(&log, |i| if i < cut { 1 } else { 2 });
    assert_eq!(labels(&deployment.read_models, &log).await, want);
    let newest = read_log(&deployment.store, newest).await;
    assert_eq!(label_of(&deployment.read_models, &newest[newest.len() - 1]).await, None, "not taken in: not applied");

    label.store(3, Ordering::SeqCst);
    let since = log[log.len() - 3].recorded_at;
    let first = log.iter().position(|e| e.recorded_at >= since).expect("an event since");
    let (exit, out, err) =
        run(&ops, &["projections", "replay", "stamp", "--since", &since.to_rfc3339(), "--yes"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    assert!(out.starts_with("replayed stamp from "), "{out}");
    let want = expected(&log, |i| {
        if i >= first {
            3
        } else if i >= cut {
            2
        } else {
            1
        }
    });
    assert_eq!(labels(&deployment.read_models, &log).await, want);
    for args in [&["--yes"][..], &["--from", "0/0", "--since", "2026-01-01T00:00:00Z"], &["--from", "7"]] {
        let args = ["app", "projections", "replay", "stamp"].into_iter().chain(args.iter().copied());
        assert!(Cli::try_parse_from(args).is_err(), "one start, well written, is required");
    }
}

/// Keeps, per stream, the version of the last event applied: idempotent, and left behind
/// by any replay that applied an older event after a newer one.
struct Latest {
    codec: EventCodec<LedgerEvent>,
}

impl<R> Projection<R> for Latest
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "latest"
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        tx.put_as("latest", event.stream_id.as_str(), &event.stream_version.0).await
    }
}

/// Whether every stream's document holds the version of its last event the projection
/// handles, as far as the runner has taken the stream in.
async fn latest_everywhere(deployment: &Deployment, streams: usize) -> bool {
    for n in 0..streams {
        let id = support::stream(n);
        let seen = deployment.read_models.stream_seen("latest", &id).await.expect("seen").0;
        let events = tidemark::read_stream_to_end(&deployment.store, &id, tidemark::StreamVersion(1), 100)
            .await
            .expect("read the stream");
        let want = events.iter().rev().find(|e| e.stream_version.0 <= seen && e.event_type != "Noted");
        let found = deployment.read_models.document("latest", "latest", id.as_str()).await.expect("read");
        let found: Option<u64> = found.map(|v| serde_json::from_value(v).expect("a version"));
        if found != want.map(|e| e.stream_version.0) || seen != events.last().map_or(0, |e| e.stream_version.0) {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_beside_a_running_runner_leaves_no_stream_behind_it() {
    let deployment = Deployment::new().await;
    let runner = deployment.runner(Latest { codec: EventCodec::without_upcasters().expect("codec") }).await;
    let ops = Ops::new(deployment.store.clone()).projection(runner.clone()).non_interactive();
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), deployment.stop.clone());
        async move { runner.run(stop).await }
    });
    append_rounds(&deployment.store, 4, 4, 2).await;
    wait_until("the runner takes the first events in", || latest_everywhere(&deployment, 4)).await;

    let appending = tokio::spawn({
        let store = deployment.store.clone();
        async move {
            for _ in 0..20 {
                append_rounds(&store, 4, 1, 1).await;
            }
        }
    });
    let args = ["projections", "replay", "latest", "--from", "0/0", "--batch-size", "3", "--yes", "--json"];
    let (exit, out, err) = run(&ops, &args).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    assert!(json(&out)["applied"].as_u64().is_some_and(|n| n > 0), "{out}");
    appending.await.expect("appended");
    wait_until("every stream ends at its last event", || latest_everywhere(&deployment, 4)).await;
    deployment.stop.cancel();
    running.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_all_asks_once_and_rebuilds_every_projection() {
    let deployment = Deployment::new().await;
    let (first, second) = (TallyProjection::new("first"), TallyProjection::new("second"));
    let ops = Ops::new(deployment.store.clone())
        .projection(deployment.runner(first).await)
        .projection(deployment.runner(second).await)
        .non_interactive();
    let outcomes = append_rounds(&deployment.store, 3, 2, 2).await;
    let head = outcomes.iter().filter_map(|o| o.last_position).max().expect("appended");
    read_log(&deployment.store, head).await;
    let (exit, _, err) = run(&ops, &["projections", "rebuild", "--all"]).await;
    assert_eq!(exit, OpsExit::Refused);
    assert!(err.contains("rebuild every projection (first, second)"), "{err}");
    assert_eq!(deployment.taken_in("first").await, 0, "refused: nothing rebuilt");

    let (exit, out, err) = run(&ops, &["projections", "rebuild", "--all", "--yes", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    let names: Vec<_> = lines.iter().map(|l| (l["projection"].as_str(), l["outcome"].as_str())).collect();
    assert_eq!(names, [(Some("first"), Some("completed")), (Some("second"), Some("completed"))]);
    assert_eq!(lines[1]["events"].as_u64(), Some(12), "{out}");
    for name in ["first", "second"] {
        let partitions = deployment.read_models.partitions(name).await.expect("partitions");
        assert!(partitions.iter().all(|(_, s)| s.position == head), "{name} rebuilt to the head: {partitions:?}");
    }
}

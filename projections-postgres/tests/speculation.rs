//! Batches applied before their check (`Projection::undoable`): a batch is applied as if
//! it held the next versions of its streams, and checked as its progress is recorded. One
//! that held a redelivery, a gap or a parked stream is undone and taken again with the
//! check first. The read model never shows an undone batch; a projection that is not
//! undoable is never handed a version it has seen. On PostgreSQL and in memory.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tidemark::{
    AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, InMemoryEventStore, LogPosition, RecordedEvent,
    StreamId, StreamVersion,
};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{
    ApplyError, BatchOptimisations, CheckedCommit, DocumentReader, DocumentTx, Incoming, MemoryReadModels, Progress,
    Projection, ProjectionError, ProjectionRunner, ReadModels, ReadModelsAdmin, RunnerConfig, Seen,
};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use support::scripted::{Script, Scripted};
use support::{events, read_log, replay, stream, LedgerEvent, Tally};

/// Batches checked first after one was undone (the runner's `CAREFUL_AFTER_UNDO`): the
/// scenario sends this many between the cases it wants applied before their check.
const CAREFUL_RUN: usize = 16;

/// Keeps a [`Tally`] per stream with no check of its own (unlike the tally projection, it
/// would count a version twice without a word), and counts the calls of `apply`.
struct Counter {
    name: String,
    codec: EventCodec<LedgerEvent>,
    undoable: bool,
    calls: Arc<AtomicU64>,
}

impl Counter {
    fn new(name: &str, undoable: bool) -> Self {
        let codec = EventCodec::without_upcasters().expect("codec");
        Self { name: name.to_owned(), codec, undoable, calls: Arc::default() }
    }
}

impl<R> Projection<R> for Counter
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        &self.name
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    fn undoable(&self) -> bool {
        self.undoable
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let key = event.stream_id.as_str();
        let mut tally: Tally = tx.get_as("counts", key).await?.unwrap_or_default();
        tally.events += 1;
        tally.version = event.stream_version.0;
        tally.balance += match &event.event {
            LedgerEvent::Deposited(d) => d.amount,
            LedgerEvent::Withdrawn(w) => -w.amount,
        };
        tx.put_as("counts", key, &tally).await
    }
}

async fn counts<D: DocumentReader>(documents: &D, projection: &str) -> BTreeMap<String, Tally> {
    let all = documents.documents(projection, "counts", "", 100_000).await.expect("read documents");
    all.into_iter().map(|(k, v)| (k, serde_json::from_value(v).expect("count"))).collect()
}

/// The installed recorder: one per test binary, shared by its tests (whose projections
/// have names of their own).
fn metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
            handle
        })
        .clone()
}

fn speculations(metrics: &PrometheusHandle, projection: &str, outcome: &str) -> u64 {
    let text = metrics.render();
    let line = format!("tidemark_projection_speculations_total{{projection=\"{projection}\",outcome=\"{outcome}\"}} ");
    let found = text.lines().find_map(|l| l.strip_prefix(line.as_str()));
    found.map_or(0, |n| n.trim().parse().expect("a count"))
}

/// What the scenario did: calls of `apply`, and the log it was fed from.
struct Run {
    calls: u64,
    /// Batches undone, as the runner's status counts them.
    undone: u64,
    log: Vec<RecordedEvent>,
}

/// Feeds a runner of `projection` batch by batch:
/// 1. `a1 a2 b1`, new versions;
/// 2. `a1 a2` again, a redelivery;
/// 3. `a4` without `a3`, a gap (after a run of batches of new streams, so that it is
///    applied before its check too);
/// 4. `b2 b2`, a duplicate within a batch (never applied before its check);
/// 5. `b3`, new.
async fn scenario<R, S>(projection: Counter, read_models: R, store: S) -> Run
where
    R: ReadModelsAdmin + BatchOptimisations,
    R::Tx: DocumentTx,
    S: EventStore + Clone + 'static,
{
    let (a, b) = (stream(1), stream(2));
    for (id, count) in [(&a, 4), (&b, 3)] {
        let request = AppendRequest::new(id.clone(), ExpectedVersion::NoStream, deposits(count));
        store.append(request).await.expect("append");
    }
    let fillers: Vec<StreamId> = (100..100 + 2 * CAREFUL_RUN).map(stream).collect();
    let mut last = None;
    for id in &fillers {
        let request = AppendRequest::new(id.clone(), ExpectedVersion::NoStream, deposits(1));
        last = store.append(request).await.expect("append").last_position;
    }
    // Through the last append (the readable head may not have reached it yet).
    let log = read_log(&store, last.expect("appended")).await;
    let at = |id: &StreamId, version: u64| -> Incoming {
        let event = log.iter().find(|e| e.stream_id == *id && e.stream_version.0 == version).expect("in the log");
        Incoming::Untrusted(event.clone())
    };

    let calls = projection.calls.clone();
    let config = RunnerConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(5));
    let (feed, mut script) = Scripted::new();
    let runner = ProjectionRunner::new(projection, read_models, store, feed, config).expect("runner");
    runner.set_up().await.expect("set up");
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (runner, stop) = (runner.clone(), stop.clone());
        async move { runner.run(stop).await }
    });

    let mut script = Feeding { script: &mut script, delivered: 0 };
    script.deliver(vec![at(&a, 1), at(&a, 2), at(&b, 1)]).await;
    script.deliver(vec![at(&a, 1), at(&a, 2)]).await;
    for id in &fillers[..CAREFUL_RUN] {
        script.deliver(vec![at(id, 1)]).await;
    }
    script.deliver(vec![at(&a, 4)]).await;
    for id in &fillers[CAREFUL_RUN..] {
        script.deliver(vec![at(id, 1)]).await;
    }
    script.deliver(vec![at(&b, 2), at(&b, 2)]).await;
    script.deliver(vec![at(&b, 3)]).await;

    stop.cancel();
    task.await.expect("joined").expect("clean stop");
    let status = runner.status();
    assert_eq!(status.totals.duplicates, 3, "a1 a2 redelivered, b2 twice: {status:?}");
    assert_eq!(status.totals.repaired, 1, "a3 read from the store: {status:?}");
    Run { calls: calls.load(Ordering::SeqCst), undone: status.totals.undone, log }
}

/// Sends batches in order, checking each is acknowledged in turn.
struct Feeding<'a> {
    script: &'a mut Script,
    delivered: usize,
}

impl Feeding<'_> {
    async fn deliver(&mut self, batch: Vec<Incoming>) {
        self.delivered += 1;
        assert_eq!(self.script.deliver(batch).await, self.delivered, "acknowledged in order");
    }
}

fn deposits(count: usize) -> Vec<tidemark::NewEvent> {
    // The shared generator: deposits, the fourth of every five a withdrawal, the fifth a
    // type the projection does not handle (the scenario's streams are shorter than five).
    events(0, 0, count)
}

/// `a1 a2 b1` (3), the redelivered pair before its check (2), a careful run (16), `a4`
/// before its check and then with `a3` (3), a careful run (16), `b2` (1), `b3` (1).
const CALLS_UNDOABLE: u64 = 3 + 2 + CAREFUL_RUN as u64 + 3 + CAREFUL_RUN as u64 + 1 + 1;
/// Every version once: `a1 a2 b1`, the fillers, `a3 a4`, `b2`, `b3`.
const CALLS_CHECKED: u64 = 3 + 2 * CAREFUL_RUN as u64 + 2 + 1 + 1;

async fn pg() -> (TestSchema, PgEventStore, PgReadModels) {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(20));
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("projection migrations");
    (schema, store, read_models)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_undone_batches_leave_no_trace_and_the_read_model_equals_a_replay() {
    support::logs();
    let metrics = metrics();
    let (_schema, store, read_models) = pg().await;
    let run = scenario(Counter::new("pg-undoable", true), read_models.clone(), store).await;
    assert_eq!(counts(&read_models, "pg-undoable").await, replay(&run.log));
    assert_eq!(run.calls, CALLS_UNDOABLE, "the redelivery and the gap were applied before their check");
    assert_eq!(run.undone, 2);
    assert_eq!(speculations(&metrics, "pg-undoable", "undone"), 2);
    let kept = speculations(&metrics, "pg-undoable", "kept");
    assert_eq!(kept, 2, "a1 a2 b1, and b3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_projection_that_is_not_undoable_never_meets_a_version_twice() {
    let metrics = metrics();
    let (_schema, store, read_models) = pg().await;
    let run = scenario(Counter::new("pg-checked", false), read_models.clone(), store).await;
    assert_eq!(counts(&read_models, "pg-checked").await, replay(&run.log));
    assert_eq!(run.calls, CALLS_CHECKED, "apply never called for a version seen");
    assert_eq!(run.undone, 0);
    assert_eq!(speculations(&metrics, "pg-checked", "kept") + speculations(&metrics, "pg-checked", "undone"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_undone_batches_leave_no_trace_and_the_read_model_equals_a_replay() {
    let read_models = MemoryReadModels::new();
    let run = scenario(Counter::new("memory-undoable", true), read_models.clone(), InMemoryEventStore::new()).await;
    assert_eq!(counts(&read_models, "memory-undoable").await, replay(&run.log));
    assert_eq!(run.calls, CALLS_UNDOABLE, "the redelivery and the gap were applied before their check");
    assert_eq!(run.undone, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_a_projection_that_is_not_undoable_never_meets_a_version_twice() {
    let read_models = MemoryReadModels::new();
    let run = scenario(Counter::new("memory-checked", false), read_models.clone(), InMemoryEventStore::new()).await;
    assert_eq!(counts(&read_models, "memory-checked").await, replay(&run.log));
    assert_eq!((run.calls, run.undone), (CALLS_CHECKED, 0));
}

/// A stream, the version a batch records for it, and whether it parks.
type Recorded<'a> = (&'a StreamId, u64, bool);

/// A batch's progress: each stream at its version (and whether it parks), the partition
/// at `position`.
fn progress(streams: Vec<Recorded<'_>>, position: u64) -> Progress {
    Progress {
        position: LogPosition::new(position, 0),
        events: streams.len() as u64,
        streams: streams
            .into_iter()
            .map(|(s, version, parked)| (s.clone(), Seen { version: StreamVersion(version), parked }))
            .collect(),
        ..Progress::default()
    }
}

/// Creates `projection`'s namespace.
async fn set_up<R: ReadModelsAdmin>(models: &R, projection: &str) {
    let mut tx = models.begin().await.expect("begin");
    models.create_namespace(&mut tx, projection).await.expect("namespace");
    models.commit(tx).await.expect("commit");
}

/// How both direct tests end: only the notes `first` and `kept` were committed, each
/// stream was last seen at its version, and the partition counted four events (two
/// batches of the test and one record) and stands at position 30.
async fn assert_kept<R: ReadModelsAdmin + DocumentReader>(models: &R, projection: &str, seen: [(&StreamId, u64); 3]) {
    let notes: Vec<String> =
        models.documents(projection, "notes", "", 10).await.expect("documents").into_iter().map(|(k, _)| k).collect();
    assert_eq!(notes, ["first", "kept"]);
    for (stream, version) in seen {
        assert_eq!(models.stream_seen(projection, stream).await.expect("seen"), StreamVersion(version), "{stream}");
    }
    let partitions = models.partitions(projection).await.expect("partitions");
    assert_eq!(partitions.len(), 1);
    let (_, state) = partitions[0];
    assert_eq!(state.events, 2 + 1 + 1, "only the recorded batches count");
    assert_eq!(state.position, LogPosition::new(30, 0), "the position never moves back (the batch at 5)");
}

/// `record_if_seen` and `undo_batch` of a backend, directly: what each expected version
/// lets through, and that an undone batch keeps its lock and loses its writes.
async fn check_and_undo<R>(models: &R)
where
    R: BatchOptimisations + ReadModelsAdmin + DocumentReader,
    R::Tx: DocumentTx,
{
    let [a, b, c] = ["a-1", "b-1", "c-1"].map(|id| StreamId::new(id).expect("id"));
    set_up(models, "direct").await;

    // New streams, expected never seen: recorded.
    let mut tx = models.begin_batch("direct", 0).await.expect("begin");
    tx.put("notes", "first", serde_json::json!(1)).await.expect("put");
    let first = progress(vec![(&a, 2, false), (&b, 1, false)], 10);
    assert!(models
        .record_if_seen(&mut tx, "direct", 0, &first, &[StreamVersion(0), StreamVersion(0)])
        .await
        .expect("recorded"));
    models.commit(tx).await.expect("commit");

    // Refused: a stale expected version, a stream seen where none was expected, one never
    // seen where a version was expected. Each is undone, and the batch goes on.
    let refused: [(Vec<Recorded<'_>>, Vec<u64>); 3] = [
        (vec![(&a, 3, false)], vec![1]),
        (vec![(&b, 2, false), (&c, 1, false)], vec![1, 1]),
        (vec![(&c, 5, false)], vec![4]),
    ];
    let mut tx = models.begin_batch("direct", 0).await.expect("begin");
    for (streams, expected) in refused {
        tx.put("notes", "undone", serde_json::json!(2)).await.expect("put");
        let p = progress(streams, 20);
        assert!(
            !models.record_if_seen(&mut tx, "direct", 0, &p, &versions(&expected)).await.expect("checked"),
            "{p:?}"
        );
        models.undo_batch(&mut tx).await.expect("undone");
    }
    // Then the right one: recorded, and committed with no trace of the undone writes.
    tx.put("notes", "kept", serde_json::json!(3)).await.expect("put");
    let next = progress(vec![(&a, 3, false)], 5);
    assert!(models.record_if_seen(&mut tx, "direct", 0, &next, &[StreamVersion(2)]).await.expect("recorded"));
    models.commit(tx).await.expect("commit");

    // A parked stream is refused even at its version.
    let mut tx = models.begin_batch("direct", 0).await.expect("begin");
    models.record(&mut tx, "direct", 0, &progress(vec![(&b, 2, true)], 30)).await.expect("record");
    models.commit(tx).await.expect("commit");
    let mut tx = models.begin_batch("direct", 0).await.expect("begin");
    let parked = progress(vec![(&b, 3, false)], 40);
    assert!(!models.record_if_seen(&mut tx, "direct", 0, &parked, &[StreamVersion(2)]).await.expect("checked"));
    models.undo_batch(&mut tx).await.expect("undone");
    models.commit(tx).await.expect("commit");

    assert_kept(models, "direct", [(&a, 3), (&b, 2), (&c, 0)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checks_expected_versions_and_undoes_a_refused_batch() {
    let (_schema, _store, read_models) = pg().await;
    check_and_undo(&read_models).await;
    // Only a batch's transaction has a point to return to.
    let mut tx = read_models.begin().await.expect("begin");
    let undone = read_models.undo_batch(&mut tx).await;
    assert!(matches!(undone, Err(ProjectionError::Config(_))), "{undone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_checks_expected_versions_and_undoes_a_refused_batch() {
    check_and_undo(&MemoryReadModels::new()).await;
}

/// `commit_if_seen` of a backend, directly: a batch refused by the check is not committed
/// and comes back open, to undo and go on with; one as expected is recorded and committed.
async fn commit_or_give_back<R>(models: &R, projection: &str)
where
    R: BatchOptimisations + ReadModelsAdmin + DocumentReader,
    R::Tx: DocumentTx,
{
    let [a, b, c] = ["a-1", "b-1", "c-1"].map(|id| StreamId::new(id).expect("id"));
    let committed = |checked: CheckedCommit<R::Tx>| matches!(checked, CheckedCommit::Committed);
    set_up(models, projection).await;

    let mut tx = models.begin_batch(projection, 0).await.expect("begin");
    tx.put("notes", "first", serde_json::json!(1)).await.expect("put");
    let first = progress(vec![(&a, 2, false), (&b, 1, false)], 10);
    assert!(committed(
        models
            .commit_if_seen(tx, projection, 0, &first, &[StreamVersion(0), StreamVersion(0)])
            .await
            .expect("committed")
    ));

    // Refused twice (a stale version, a stream never seen where one was expected), each
    // time undone; then the right one, in the same transaction.
    let mut tx = models.begin_batch(projection, 0).await.expect("begin");
    for (streams, expected) in [(vec![(&a, 3, false)], vec![1]), (vec![(&c, 5, false)], vec![4])] {
        tx.put("notes", "undone", serde_json::json!(2)).await.expect("put");
        let refused = progress(streams, 20);
        let CheckedCommit::Refused(back) =
            models.commit_if_seen(tx, projection, 0, &refused, &versions(&expected)).await.expect("checked")
        else {
            panic!("{refused:?} at {expected:?} was committed");
        };
        tx = back;
        models.undo_batch(&mut tx).await.expect("undone");
    }
    tx.put("notes", "kept", serde_json::json!(3)).await.expect("put");
    assert!(committed(
        models
            .commit_if_seen(tx, projection, 0, &progress(vec![(&a, 3, false)], 5), &[StreamVersion(2)])
            .await
            .expect("committed")
    ));

    // A parked stream is refused even at its version.
    let mut tx = models.begin_batch(projection, 0).await.expect("begin");
    models.record(&mut tx, projection, 0, &progress(vec![(&b, 1, true)], 30)).await.expect("record");
    models.commit(tx).await.expect("commit");
    let tx = models.begin_batch(projection, 0).await.expect("begin");
    let parked = progress(vec![(&b, 2, false)], 40);
    let CheckedCommit::Refused(mut tx) =
        models.commit_if_seen(tx, projection, 0, &parked, &[StreamVersion(1)]).await.expect("checked")
    else {
        panic!("a parked stream's batch was committed");
    };
    models.undo_batch(&mut tx).await.expect("undone");
    models.commit(tx).await.expect("commit");

    assert_kept(models, projection, [(&a, 3), (&b, 1), (&c, 0)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commits_a_checked_batch_or_gives_it_back() {
    let (_schema, _store, read_models) = pg().await;
    // A name with a quote and a backslash: the batch's values are written into the query.
    commit_or_give_back(&read_models, r"it's a \ name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_commits_a_checked_batch_or_gives_it_back() {
    commit_or_give_back(&MemoryReadModels::new(), "direct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_more_than_64_events_is_checked_first() {
    let store = InMemoryEventStore::new();
    let read_models = MemoryReadModels::new();
    let long = stream(7);
    let request = AppendRequest::new(long.clone(), ExpectedVersion::NoStream, deposits(65));
    let appended = store.append(request).await.expect("append");
    let log = read_log(&store, appended.last_position.expect("appended")).await;
    let projection = Counter::new("memory-large", true);
    let calls = projection.calls.clone();
    let config = RunnerConfig::default().batch_size(100);
    let (feed, mut script) = Scripted::new();
    let runner = ProjectionRunner::new(projection, read_models.clone(), store, feed, config).expect("runner");
    runner.set_up().await.expect("set up");
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (runner, stop) = (runner.clone(), stop.clone());
        async move { runner.run(stop).await }
    });
    let batch: Vec<Incoming> = log.iter().cloned().map(Incoming::Untrusted).collect();
    let mut feeding = Feeding { script: &mut script, delivered: 0 };
    feeding.deliver(batch.clone()).await;
    // Applied first, this redelivery would be applied (65 calls) and undone.
    feeding.deliver(batch).await;
    stop.cancel();
    task.await.expect("joined").expect("clean stop");
    assert_eq!(runner.status().totals.duplicates, 65);
    assert_eq!(runner.status().totals.undone, 0);
    let handled = log.iter().filter(|e| e.event_type != "Noted").count() as u64;
    assert_eq!(calls.load(Ordering::SeqCst), handled, "each version applied once, the redelivery checked first");
    assert_eq!(counts(&read_models, "memory-large").await, replay(&log));
}

/// The stream versions of plain numbers.
fn versions(numbers: &[u64]) -> Vec<StreamVersion> {
    numbers.iter().copied().map(StreamVersion).collect()
}

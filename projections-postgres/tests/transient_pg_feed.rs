//! A runner on the PostgreSQL feed whose database sessions are killed, again and again,
//! while events are appended (`pg_terminate_backend` on the sessions of the runner's own
//! pool, told apart by their `application_name`). Throughout, nothing the runner records
//! (partition checkpoints, stream versions seen, its status) claims more than the read
//! model holds; it catches up soon after the last kill; and the read model equals a
//! plain-SQL fold of the log: nothing lost, doubled or reordered, nothing parked.

mod support;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tidemark::{AppendOutcome, StreamId};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{PoisonPolicy, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

use support::fragile::{orders, Fragile};
use support::nats::spawn_runner;
use support::sql_fold::sql_fold;
use support::tallies;

const NAME: &str = "survivor";
const PARTITIONS: u32 = 2;
/// How many times the runner's sessions are killed, and how far apart.
const KILLS: usize = 12;
const KILL_EVERY: Duration = Duration::from_millis(120);
/// How soon after the last kill the read model must hold every event.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Ends every session of the runner's pool (by its `application_name`, in this database
/// only, never the caller's own): how many, and how many of them were in a transaction.
async fn kill_sessions(admin: &PgPool, application: &str) -> (usize, usize) {
    // The terminations stand in the select list, evaluated only for the rows the WHERE
    // clause keeps (a condition beside them could be evaluated after them).
    let sql = "SELECT pg_terminate_backend(pid), xact_start IS NOT NULL FROM pg_stat_activity \
               WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()";
    let ended: Vec<(bool, bool)> =
        sqlx::query_as(sql).bind(application).fetch_all(admin).await.expect("terminate the runner's sessions");
    (ended.iter().filter(|(ended, _)| *ended).count(), ended.iter().filter(|(ended, busy)| *ended && *busy).count())
}

/// The state of the read model and of the runner's bookkeeping, in one snapshot.
struct Snapshot {
    /// Per partition: the log position of the last event committed.
    checkpoints: BTreeMap<u32, (i64, i64)>,
    /// Per stream: the last version seen.
    seen: BTreeMap<String, i64>,
    /// The handled events of the log: stream, version, log position.
    events: Vec<(String, i64, (i64, i64))>,
    /// Per stream: the versions the read model holds, in the order applied.
    held: BTreeMap<String, Vec<u64>>,
}

async fn snapshot(admin: &PgPool, schema: &str, projection_schema: &str) -> Snapshot {
    let mut tx = admin.begin().await.expect("begin");
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .expect("one snapshot");
    let partitions: Vec<(i32, i64, i64)> = sqlx::query_as(&format!(
        "SELECT partition, transaction_id, sequence FROM \"{schema}\".projection_partitions WHERE projection = $1"
    ))
    .bind(NAME)
    .fetch_all(&mut *tx)
    .await
    .expect("checkpoints");
    let seen: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT stream_id, version FROM \"{schema}\".projection_streams WHERE projection = $1"
    ))
    .bind(NAME)
    .fetch_all(&mut *tx)
    .await
    .expect("versions seen");
    let events: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT stream_id, stream_version, transaction_id, sequence FROM \"{schema}\".events \
         WHERE event_type IN ('Deposited', 'Withdrawn')"
    ))
    .fetch_all(&mut *tx)
    .await
    .expect("events");
    // The documents table appears with the projection's set-up, before the runner starts.
    let held: Vec<(String, serde_json::Value)> =
        sqlx::query_as(&format!("SELECT key, body FROM \"{projection_schema}\".documents WHERE collection = $1"))
            .bind(format!("order-{NAME}"))
            .fetch_all(&mut *tx)
            .await
            .expect("documents");
    tx.commit().await.expect("end the snapshot");
    Snapshot {
        checkpoints: partitions.into_iter().map(|(p, t, s)| (p as u32, (t, s))).collect(),
        seen: seen.into_iter().collect(),
        events: events.into_iter().map(|(stream, version, t, s)| (stream, version, (t, s))).collect(),
        held: held.into_iter().map(|(k, v)| (k, serde_json::from_value(v).expect("versions"))).collect(),
    }
}

impl Snapshot {
    /// Fails unless the read model holds everything the bookkeeping says was applied, each
    /// event once and in stream order. Returns how many events the read model holds.
    fn check(&self) -> u64 {
        let mut handled: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (stream, version, _) in &self.events {
            handled.entry(stream).or_default().push(*version as u64);
        }
        for versions in handled.values_mut() {
            versions.sort_unstable();
        }
        let none = Vec::new();
        for (stream, held) in &self.held {
            assert!(held.windows(2).all(|w| w[0] < w[1]), "{stream} applied out of order or twice: {held:?}");
            let all = handled.get(stream.as_str()).unwrap_or(&none);
            assert!(held.iter().all(|v| all.contains(v)), "{stream} holds versions not in the log: {held:?}");
        }
        // A stream's version seen claims exactly its events up to it.
        for (stream, seen) in &self.seen {
            let claimed: Vec<u64> =
                handled.get(stream.as_str()).unwrap_or(&none).iter().copied().filter(|v| *v <= *seen as u64).collect();
            let held = self.held.get(stream).unwrap_or(&none);
            assert_eq!(held, &claimed, "{stream} is recorded as seen through {seen}");
        }
        // A partition's checkpoint claims every event of the partition up to its position.
        for (stream, version, position) in &self.events {
            let partition = StreamId::new(stream.as_str()).expect("stream id").partition(PARTITIONS);
            if self.checkpoints.get(&partition).is_some_and(|checkpoint| position <= checkpoint) {
                let held = self.held.get(stream).unwrap_or(&none);
                assert!(
                    held.contains(&(*version as u64)),
                    "partition {partition} is checkpointed past {stream} version {version}, which the read model lacks"
                );
            }
        }
        self.held.values().map(|v| v.len() as u64).sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_a_runner_whose_sessions_are_killed_loses_nothing_and_catches_up() {
    support::logs();
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(50));
    // The writer's store and the checks use the schema's pool, which is never killed.
    let store = PgEventStore::from_pool(schema.pool().clone(), config.clone()).expect("store");
    store.migrate().await.expect("migrate the store");
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("migrate the read models");

    // The runner reads and writes through a pool of its own, named for the kills.
    let application = format!("{}_runner", schema.name());
    let options = PgConnectOptions::from_str(schema.url()).expect("url").application_name(&application);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .expect("the runner's pool");
    let runner_store = PgEventStore::from_pool(pool.clone(), config).expect("the runner's store");
    let runner_models = PgReadModels::new(&runner_store);
    let feed = PgLogFeed::new(runner_store.clone(), PARTITIONS).expect("feed");
    let runner_config = RunnerConfig::default()
        .batch_size(20)
        .backoff(Duration::from_millis(5), Duration::from_millis(50))
        .poison(PoisonPolicy::Park, 3);
    let runner = ProjectionRunner::new(Fragile::new(NAME, false), runner_models, runner_store, feed, runner_config)
        .expect("runner");
    runner.set_up().await.expect("set up");
    let (stop, task) = spawn_runner(&runner);
    let projection_schema = read_models.projection_schema(NAME);

    // Appends go on until the kills are over.
    let killing = Arc::new(AtomicBool::new(true));
    let appender = tokio::spawn({
        let (store, killing) = (store.clone(), killing.clone());
        async move {
            let mut last: BTreeMap<String, AppendOutcome> = BTreeMap::new();
            let mut rounds = 0;
            while killing.load(Ordering::SeqCst) || rounds < 10 {
                for outcome in support::append_rounds(&store, 8, 1, 3).await {
                    last.insert(outcome.stream_id.to_string(), outcome);
                }
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (rounds, last)
        }
    });

    // Samples the bookkeeping against the read model until told to stop.
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn({
        let (admin, runner, done) = (schema.pool().clone(), runner.clone(), sampling.clone());
        let (schema, projection_schema) = (schema.name().to_owned(), projection_schema.clone());
        async move {
            let (mut samples, mut failing) = (0u32, 0u32);
            while !done.is_cancelled() {
                // Read first: the read model only grows, so it must hold at least as much
                // when looked at after.
                let status = runner.status();
                let held = snapshot(&admin, &schema, &projection_schema).await.check();
                assert!(
                    status.totals.applied <= held,
                    "status says {} applied, the read model holds {held}",
                    status.totals.applied
                );
                samples += 1;
                failing += u32::from(status.last_error.is_some());
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            (samples, failing)
        }
    });

    let (mut killed, mut in_transaction) = (0, 0);
    let mut rounds_killing = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(KILL_EVERY).await;
        let (n, busy) = kill_sessions(schema.pool(), &application).await;
        killed += n;
        in_transaction += busy;
        rounds_killing += usize::from(n > 0);
    }
    let last_kill = Instant::now();
    killing.store(false, Ordering::SeqCst);
    let (rounds, last) = appender.await.expect("the appender");

    // Caught up: the read model equals the fold of the whole log, in SQL.
    let fold = sql_fold(schema.pool(), schema.name(), None).await;
    let projection = runner.projection();
    loop {
        let held = orders(&read_models, projection).await;
        if held == fold.versions && tallies(&read_models, &projection.inner).await == fold.tallies {
            break;
        }
        assert!(last_kill.elapsed() < CATCH_UP, "not caught up {CATCH_UP:?} after the last kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = last_kill.elapsed();
    sampling.cancel();
    let (samples, failing) = sampler.await.expect("every sample held");
    eprintln!(
        "{KILLS} kills ended {killed} sessions ({in_transaction} in a transaction); {rounds} rounds appended; \
         {samples} samples ({failing} after a failure); caught up {caught_up:?} after the last kill"
    );
    assert_eq!(rounds_killing, KILLS, "every kill found a session of the runner");
    assert!(in_transaction > 0, "no kill caught the runner inside a transaction");
    assert!(failing > 0, "the runner never reported a failure: the kills missed it");
    assert!(samples >= 20, "only {samples} samples");

    // Every stream's versions are 1..n: those the read model holds, each once and in
    // order, and the `Noted` ones it does not handle. Its version seen is its last.
    let last_check = snapshot(schema.pool(), schema.name(), &projection_schema).await;
    assert_eq!(last_check.check(), fold.versions.values().map(|v| v.len() as u64).sum::<u64>());
    let unhandled: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT stream_id, stream_version FROM \"{}\".events WHERE event_type NOT IN ('Deposited', 'Withdrawn')",
        schema.name()
    ))
    .fetch_all(schema.pool())
    .await
    .expect("unhandled events");
    assert_eq!(last.len(), 8);
    for (stream, outcome) in &last {
        let mut versions = last_check.held[stream].clone();
        versions.extend(unhandled.iter().filter(|(s, _)| s == stream).map(|(_, v)| *v as u64));
        versions.sort_unstable();
        assert_eq!(versions, (1..=outcome.version.0).collect::<Vec<_>>(), "{stream}");
        assert_eq!(last_check.seen[stream], outcome.version.0 as i64, "{stream}");
    }
    assert!(runner.dead_letters().await.expect("dead letters").is_empty(), "nothing parked");
    assert!(!task.is_finished(), "the runner kept running");
    stop.cancel();
    task.await.expect("joined").expect("clean stop");
    pool.close().await;
}

/// The snapshot check itself refuses what the runner must never do: a checkpoint or a
/// version seen past what the read model holds, an event applied twice or out of order.
mod the_check {
    use super::*;

    /// Stream `account-1` (partition of its own) with versions 1..=3 in the log at
    /// positions (10, 1..=3), fully applied and claimed.
    fn consistent() -> Snapshot {
        let stream = "account-1".to_owned();
        let partition = StreamId::new(stream.as_str()).expect("id").partition(PARTITIONS);
        Snapshot {
            checkpoints: BTreeMap::from([(partition, (10, 3))]),
            seen: BTreeMap::from([(stream.clone(), 3)]),
            events: (1..=3).map(|v| (stream.clone(), v, (10, v))).collect(),
            held: BTreeMap::from([(stream, vec![1, 2, 3])]),
        }
    }

    #[test]
    fn passes_a_consistent_snapshot() {
        assert_eq!(consistent().check(), 3);
    }

    #[test]
    #[should_panic(expected = "is recorded as seen through 3")]
    fn refuses_a_version_seen_past_the_read_model() {
        let mut snapshot = consistent();
        snapshot.held.insert("account-1".to_owned(), vec![1, 2]);
        snapshot.check();
    }

    #[test]
    #[should_panic(expected = "which the read model lacks")]
    fn refuses_a_checkpoint_past_the_read_model() {
        let mut snapshot = consistent();
        snapshot.held.insert("account-1".to_owned(), vec![1, 2]);
        snapshot.seen.insert("account-1".to_owned(), 2);
        snapshot.check();
    }

    #[test]
    #[should_panic(expected = "applied out of order or twice")]
    fn refuses_an_event_applied_twice() {
        let mut snapshot = consistent();
        snapshot.held.insert("account-1".to_owned(), vec![1, 2, 2, 3]);
        snapshot.check();
    }
}

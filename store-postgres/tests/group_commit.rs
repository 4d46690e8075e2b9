//! Group commit: concurrent appends share transactions, yet each keeps its own
//! expected-version check, conflict and idempotency outcome.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use tidemark::{CommandId, Error, EventStore, ExpectedVersion, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

fn config() -> PgStoreConfig {
    PgStoreConfig::default().group_commit(true).group_commit_limits(16, 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_commits_and_keep_their_own_outcomes() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, config()).await;
    // Round 1 creates 64 streams at once; round 2 appends to each with an exact version,
    // half of them stale on purpose.
    let creates = (0..64).map(|i| store.append(support::append(&format!("g-{i}"), ExpectedVersion::NoStream, 2)));
    for outcome in join_all(creates).await {
        let outcome = outcome.expect("create");
        assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(0), StreamVersion(2)));
    }
    let appends = (0..64).map(|i| {
        let expected = ExpectedVersion::Exact(StreamVersion(if i % 2 == 0 { 2 } else { 1 }));
        store.append(support::append(&format!("g-{i}"), expected, 1))
    });
    for (i, result) in join_all(appends).await.into_iter().enumerate() {
        match (i % 2, result) {
            (0, Ok(o)) => assert_eq!(o.version, StreamVersion(3)),
            (1, Err(Error::Conflict { expected, actual, .. })) => {
                assert_eq!((expected, actual), (ExpectedVersion::Exact(StreamVersion(1)), StreamVersion(2)))
            }
            (_, other) => panic!("append {i}: unexpected {other:?}"),
        }
    }
    let log = support::log_of(&store, 64 * 2 + 32).await;
    assert_eq!(log.len(), 64 * 2 + 32);
    let mut streams_per_tx: HashMap<u64, HashSet<&str>> = HashMap::new();
    for e in &log {
        streams_per_tx.entry(e.position.transaction_id).or_default().insert(e.stream_id.as_str());
    }
    assert!(streams_per_tx.values().any(|s| s.len() > 1), "no two appends shared a commit");
    let mut versions: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in &log {
        versions.entry(e.stream_id.as_str()).or_default().push(e.stream_version.0);
    }
    for (stream, v) in versions {
        let n = v.len() as u64;
        assert_eq!(v, (1..=n).collect::<Vec<_>>(), "stream {stream} out of order in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_duplicate_command_ids_in_group_commits_append_once() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, config()).await;
    let id = CommandId::new();
    let sends = (0..20).map(|_| store.append(support::append("dup-1", ExpectedVersion::Any, 3).with_command_id(id)));
    let others = (0..20).map(|i| store.append(support::append(&format!("other-{i}"), ExpectedVersion::Any, 1)));
    let (sends, others) = tokio::join!(join_all(sends), join_all(others));
    let outcomes: Vec<_> = sends.into_iter().map(|r| r.expect("send")).collect();
    assert_eq!(outcomes.iter().filter(|o| !o.duplicate).count(), 1);
    assert!(outcomes.iter().all(|o| o.version == StreamVersion(3) && o.last_position == outcomes[0].last_position));
    assert!(others.iter().all(Result::is_ok), "other streams are unaffected: {others:?}");
    assert_eq!(store.stream_version(&support::stream("dup-1")).await.expect("version"), StreamVersion(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_to_one_stream_keep_their_order_through_group_commit() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, config()).await;
    let appends = (0..50).map(|_| store.append(support::append("hot-1", ExpectedVersion::Any, 1)));
    let outcomes: Vec<_> = join_all(appends).await.into_iter().map(|r| r.expect("append")).collect();
    let versions: HashSet<u64> = outcomes.iter().map(|o| o.version.0).collect();
    assert_eq!(versions, (1..=50).collect());
    let log = support::log_of(&store, 50).await;
    assert_eq!(log.iter().map(|e| e.stream_version.0).collect::<Vec<_>>(), (1..=50).collect::<Vec<_>>());
}

/// Blocks the next append to `stream`: an open transaction inserts its version 1, so the
/// append's insert waits on the unique key until that transaction ends.
async fn block_stream(schema: &TestSchema, stream: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut blocker = schema.pool().begin().await.expect("begin");
    let sql = format!(
        "INSERT INTO \"{}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES (gen_random_uuid(), $1, 1, 'Ticked', 1, '{{}}')",
        schema.name()
    );
    sqlx::query(&sql).bind(stream).execute(&mut *blocker).await.expect("insert the blocking row");
    blocker
}

/// Waits until `statements` statements on this schema's tables wait on a lock: the
/// blocked appends.
async fn until_appends_wait(schema: &TestSchema, statements: i64) {
    let (pool, name) = (schema.pool().clone(), schema.name().to_owned());
    tidemark_testkit::wait_until("appends to wait on the blocking rows", Duration::from_secs(30), || {
        let (pool, name) = (pool.clone(), name.clone());
        async move {
            let waiting: i64 = sqlx::query_scalar(&format!("SELECT count(*) {LOCK_WAITERS}"))
                .bind(format!("\"{name}\".events"))
                .fetch_one(&pool)
                .await
                .expect("pg_stat_activity");
            waiting >= statements
        }
    })
    .await;
}

/// The sessions whose statement on the schema's events (`$1`) waits on a lock.
const LOCK_WAITERS: &str = "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0";

/// A store with group commit (batches of 64, 4 in flight, the given overlap), and one of
/// its appends sent and blocked on a row lock until `blocker` ends.
struct Blocked {
    schema: TestSchema,
    store: PgEventStore,
    blocker: sqlx::Transaction<'static, sqlx::Postgres>,
    held: tokio::task::JoinHandle<Result<tidemark::AppendOutcome, Error>>,
}

async fn blocked_append(overlap_events: usize, overlap_wait: Duration) -> Blocked {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default()
        .group_commit(true)
        .group_commit_limits(64, 4)
        .group_commit_overlap(overlap_events, overlap_wait);
    let store = support::store(&schema, config).await;
    let blocker = block_stream(&schema, "held-1").await;
    let held = tokio::spawn({
        let store = store.clone();
        async move { store.append(support::append("held-1", ExpectedVersion::NoStream, 1)).await }
    });
    until_appends_wait(&schema, 1).await;
    Blocked { schema, store, blocker, held }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_appends_gather_behind_a_batch_in_flight() {
    let Blocked { schema: _schema, store, blocker, held } = blocked_append(16, Duration::from_secs(60)).await;
    // Sixteen one-event appends arrive while that append is in flight. With slots free,
    // none starts until sixteen events wait; then they leave together, in one commit.
    let small = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(
            async move { store.append(support::append(&format!("small-{i}"), ExpectedVersion::NoStream, 1)).await },
        )
    });
    let outcomes: Vec<_> = join_all(small).await.into_iter().map(|r| r.expect("task").expect("append")).collect();
    assert!(!held.is_finished(), "the blocked append finished early");
    let transactions: HashSet<u64> =
        outcomes.iter().filter_map(|o| o.last_position.map(|p| p.transaction_id)).collect();
    assert_eq!(transactions.len(), 1, "the sixteen appends went out in {} commits", transactions.len());
    blocker.rollback().await.expect("rollback");
    let held = held.await.expect("task").expect("the blocked append");
    assert_eq!(held.version, StreamVersion(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_an_overlap_of_one_appends_pass_a_batch_in_flight() {
    let Blocked { schema: _schema, store, blocker, held } = blocked_append(1, Duration::from_secs(60)).await;
    // One waiting append is enough to start a batch beside the one in flight.
    store.append(support::append("passing-1", ExpectedVersion::NoStream, 1)).await.expect("append");
    assert!(!held.is_finished(), "the blocked append finished early");
    blocker.rollback().await.expect("rollback");
    held.await.expect("task").expect("the blocked append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_giving_up_on_a_blocked_append_does_not_stall_the_queue() {
    let Blocked { schema: _schema, store, blocker, held } = blocked_append(16, Duration::from_secs(60)).await;
    // One event waits behind the statement in flight (fewer than the overlap); then the
    // statement's caller gives up. Its slot is freed, and the waiting append must go out.
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.append(support::append("waiting-1", ExpectedVersion::NoStream, 1)).await }
    });
    held.abort();
    let appended = tokio::time::timeout(Duration::from_secs(30), waiting).await;
    let outcome = appended.expect("the waiting append stalled").expect("task").expect("append");
    assert_eq!(outcome.version, StreamVersion(1));
    blocker.rollback().await.expect("rollback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_held_up_by_a_lock_holds_appends_back_only_for_the_overlap_wait() {
    let wait = Duration::from_millis(50);
    let Blocked { schema: _schema, store, blocker, held } = blocked_append(16, wait).await;
    // One event, fewer than the overlap: it goes out beside the blocked append once it has
    // waited `wait`, not when the lock is released.
    let started = tokio::time::Instant::now();
    store.append(support::append("passing-1", ExpectedVersion::NoStream, 1)).await.expect("append");
    assert!(started.elapsed() >= wait, "the append did not wait behind the statement in flight");
    assert!(!held.is_finished(), "the blocked append finished early");
    blocker.rollback().await.expect("rollback");
    held.await.expect("task").expect("the blocked append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_whose_connection_is_lost_fails_every_append_and_writes_none() {
    let Blocked { schema, store, blocker, held } = blocked_append(16, Duration::from_secs(60)).await;
    // Sixteen appends leave in one batch, which waits on a second blocked stream. Then the
    // server ends every session waiting on a lock, as in a shutdown. The batch's commit
    // could not be told from a lost reply, so no append may be sent again on its own:
    // each gets a retryable error, and none of them is stored.
    let second = block_stream(&schema, "held-2").await;
    let batch = (0..16).map(|i| {
        let store = store.clone();
        let stream = if i == 0 { "held-2".to_owned() } else { format!("small-{i}") };
        tokio::spawn(async move { store.append(support::append(&stream, ExpectedVersion::NoStream, 1)).await })
    });
    let batch: Vec<_> = batch.collect();
    until_appends_wait(&schema, 2).await;
    sqlx::query(&format!("SELECT pg_terminate_backend(pid) {LOCK_WAITERS}"))
        .bind(format!("\"{}\".events", schema.name()))
        .execute(schema.pool())
        .await
        .expect("terminate the waiting sessions");
    // Sent again alone, the append to held-2 would wait on its lock until the end.
    let outcomes = tokio::time::timeout(Duration::from_secs(30), join_all(batch)).await;
    for (i, outcome) in outcomes.expect("the lost batch's appends did not return").into_iter().enumerate() {
        match outcome.expect("task") {
            Err(e) if e.is_retryable() => {}
            other => panic!("append {i} of the lost batch: expected a retryable error, got {other:?}"),
        }
    }
    assert!(held.await.expect("task").is_err_and(|e| e.is_retryable()), "the lone blocked append");
    second.rollback().await.expect("rollback");
    blocker.rollback().await.expect("rollback");
    for i in 1..16 {
        let version = store.stream_version(&support::stream(&format!("small-{i}"))).await.expect("version");
        assert_eq!(version, StreamVersion(0), "small-{i} was appended after its batch was lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_plain_appends_writes_the_fresh_ones_together_and_refuses_each_stale_one() {
    plain_batch(3, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_one_event_appends_writes_the_fresh_ones_together_and_refuses_each_stale_one() {
    plain_batch(1, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_plain_commands_records_the_ids_of_the_written_ones_only() {
    plain_batch(3, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_one_event_commands_records_the_ids_of_the_written_ones_only() {
    plain_batch(1, true).await;
}

/// One batch of appends that name an expected version (so it takes the lean statement:
/// its one-event form when `size` is 1): fresh ones of `size` events, stale ones, one to a
/// stream that exists, one beyond a stream's head. With `commands`, each carries a command
/// id, and each is sent again with its id afterwards: the written ones get their first
/// outcome back, the refused ones their conflict again (no id of theirs was recorded).
async fn plain_batch(size: u64, commands: bool) {
    let events = 4 + 2 * size;
    let Blocked { schema, store, blocker, held } = blocked_append(events as usize, Duration::from_secs(60)).await;
    // The appends below wait behind the blocked one until all their events wait, then
    // leave in one batch.
    let plain = support::store(&schema, PgStoreConfig::default()).await;
    for (stream, count) in [("fresh-1", 2), ("stale-1", 2), ("taken-1", 1), ("ahead-1", 1)] {
        plain.append(support::append(stream, ExpectedVersion::NoStream, count)).await.expect("fixture");
    }
    let exact = |v| ExpectedVersion::Exact(StreamVersion(v));
    let sends = [
        ("fresh-1", exact(2), size),
        ("stale-1", exact(1), 1),
        ("taken-1", ExpectedVersion::NoStream, 1),
        ("ahead-1", exact(5), 1),
        ("new-1", ExpectedVersion::NoStream, size),
        ("new-2", exact(0), 1),
    ];
    let heads = [("fresh-1", 2 + size), ("stale-1", 2), ("taken-1", 1), ("ahead-1", 1), ("new-1", size), ("new-2", 1)];
    let ids = sends.map(|_| commands.then(CommandId::new));
    let request = move |(stream, expected, count): (&str, ExpectedVersion, u64), id: Option<CommandId>| {
        let request = support::append(stream, expected, count);
        match id {
            Some(id) => request.with_command_id(id),
            None => request,
        }
    };
    let tasks = sends.iter().zip(ids).map(|(send, id)| {
        let (store, request) = (store.clone(), request(*send, id));
        tokio::spawn(async move { store.append(request).await })
    });
    let mut written = HashSet::new();
    let mut first = HashMap::new();
    for ((stream, expected, _), task) in sends.into_iter().zip(join_all(tasks).await) {
        match (stream, task.expect("task")) {
            ("fresh-1" | "new-1" | "new-2", Ok(o)) => {
                assert!(heads.contains(&(stream, o.version.0)), "{stream}: {o:?}");
                assert!(!o.duplicate, "{stream}: {o:?}");
                written.insert(o.last_position.expect("a position").transaction_id);
                first.insert(stream, o);
            }
            ("stale-1", Err(Error::Conflict { actual, .. })) => {
                assert_eq!((expected, actual), (exact(1), StreamVersion(2)))
            }
            ("taken-1" | "ahead-1", Err(Error::Conflict { actual, .. })) => {
                assert_eq!(actual, StreamVersion(1), "{stream}")
            }
            (_, other) => panic!("{stream}: unexpected {other:?}"),
        }
    }
    assert_eq!(written.len(), 1, "the fresh appends went out in {} commits", written.len());
    assert!(!held.is_finished(), "the blocked append finished early");
    blocker.rollback().await.expect("rollback");
    held.await.expect("task").expect("the blocked append");
    for (send, id) in sends.into_iter().zip(ids) {
        let Some(id) = id else { continue };
        let stream = send.0;
        let again = store.append(request(send, Some(id))).await;
        match (first.get(stream), again) {
            (Some(o), Ok(again)) => {
                assert!(again.duplicate, "{stream} appended twice: {again:?}");
                assert_eq!((again.command_id, again.version), (Some(id), o.version), "{stream}");
                assert_eq!(o.command_id, Some(id), "{stream}");
            }
            (None, Err(Error::Conflict { .. })) => {}
            (o, again) => panic!("{stream}: first {o:?}, again {again:?}"),
        }
    }
    for (stream, head) in heads {
        let events = plain.read_stream(&support::stream(stream), StreamVersion(1), 100).await.expect("read");
        let versions: Vec<u64> = events.iter().map(|e| e.stream_version.0).collect();
        assert_eq!(versions, (1..=head).collect::<Vec<_>>(), "{stream}");
    }
}

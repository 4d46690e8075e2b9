//! The global log never skips an event whose transaction commits after a later-numbered
//! one, and never returns one twice. Each scenario also runs against a reader with the
//! gap-safety condition removed, to show that the scenario really catches the hazard.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tidemark::{EventStore, ExpectedVersion, LogPosition, RecordedEvent};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;
use uuid::Uuid;

/// Inserts one event the way the store does, inside the caller's open transaction.
async fn insert_raw(conn: &mut PgConnection, schema: &str, stream: &str, version: i64) -> Uuid {
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO \"{schema}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES ($1, $2, $3, 'Ticked', 1, '{{}}')"
    );
    sqlx::query(&sql).bind(id).bind(stream).bind(version).execute(conn).await.expect("raw insert");
    id
}

/// Reads everything currently readable after `cursor`, advancing it.
async fn drain(store: &PgEventStore, cursor: &mut LogPosition, into: &mut Vec<RecordedEvent>) {
    loop {
        let page = store.read_log(*cursor, 500).await.expect("read log");
        let Some(last) = page.last() else { return };
        *cursor = last.position;
        into.extend(page);
    }
}

/// The deterministic scenario: a transaction holds an event open while later events
/// commit. Returns the ids delivered before and after it commits, and the ids written.
async fn held_transaction_scenario(schema: &TestSchema, gap_safe: bool) -> (Vec<Uuid>, Vec<RecordedEvent>, Vec<Uuid>) {
    let config = if gap_safe { PgStoreConfig::default() } else { PgStoreConfig::default().unsafe_disable_gap_safety() };
    let store = support::store(schema, config).await;
    let mut held = PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut held).await.expect("begin");
    let early = insert_raw(&mut held, schema.name(), "slow-1", 1).await;

    let mut written = vec![early];
    for (i, stream) in ["fast-1", "fast-2", "fast-1"].iter().enumerate() {
        let expected =
            if i == 2 { ExpectedVersion::Exact(tidemark::StreamVersion(1)) } else { ExpectedVersion::NoStream };
        store.append(support::append(stream, expected, 1)).await.expect("append");
    }
    let fast: Vec<_> =
        store.read_stream(&support::stream("fast-1"), tidemark::StreamVersion(1), 10).await.expect("read");
    let fast2 = store.read_stream(&support::stream("fast-2"), tidemark::StreamVersion(1), 10).await.expect("read");
    written.extend(fast.iter().chain(&fast2).map(|e| e.event_id.0));

    let mut cursor = LogPosition::START;
    let mut before = Vec::new();
    drain(&store, &mut cursor, &mut before).await;
    let before_ids = before.iter().map(|e| e.event_id.0).collect();

    sqlx::query("COMMIT").execute(&mut held).await.expect("commit");
    let mut delivered = before;
    drain(&store, &mut cursor, &mut delivered).await;
    // Transactions of other tests in the cluster may hold the horizon a little longer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(if gap_safe { 30 } else { 0 });
    while delivered.len() < written.len() && tokio::time::Instant::now() < deadline {
        store.wait_for_log(cursor, Duration::from_millis(50)).await.expect("wait");
        drain(&store, &mut cursor, &mut delivered).await;
    }
    (before_ids, delivered, written)
}

fn assert_per_stream_order(delivered: &[RecordedEvent]) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    for e in delivered {
        let prev = last.insert(e.stream_id.as_str(), e.stream_version.0).unwrap_or(0);
        assert_eq!(e.stream_version.0, prev + 1, "stream {} out of order at {}", e.stream_id, e.position);
    }
}

#[tokio::test]
async fn a_reader_waits_for_an_open_transaction_then_delivers_everything_once() {
    let schema = TestSchema::new().await;
    let (before, delivered, written) = held_transaction_scenario(&schema, true).await;
    assert!(before.is_empty(), "events committed after the open transaction began were delivered early: {before:?}");
    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id.0).collect();
    assert_eq!(ids.len(), written.len(), "delivered {ids:?}, written {written:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>(), written.iter().collect::<HashSet<_>>());
    assert_eq!(ids[0], written[0], "the held event has the smallest transaction id, so it comes first");
    assert_per_stream_order(&delivered);
}

#[tokio::test]
async fn without_the_horizon_the_held_transaction_scenario_loses_its_event() {
    let schema = TestSchema::new().await;
    let (before, delivered, written) = held_transaction_scenario(&schema, false).await;
    assert_eq!(before.len(), 3, "the unsafe reader delivers the later commits at once");
    let ids: HashSet<Uuid> = delivered.iter().map(|e| e.event_id.0).collect();
    assert!(!ids.contains(&written[0]), "the unsafe reader should have skipped the held event");
}

#[tokio::test]
async fn a_waiting_reader_is_not_woken_into_a_gap() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let mut held = PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut held).await.expect("begin");
    insert_raw(&mut held, schema.name(), "slow-1", 1).await;
    store.append(support::append("fast-1", ExpectedVersion::NoStream, 1)).await.expect("append");
    assert!(store.read_log(LogPosition::START, 10).await.expect("read").is_empty());
    let horizon = store.log_horizon().await.expect("horizon");
    assert!(horizon.oldest.is_some(), "the open transaction is reported as what holds the log back");
    sqlx::query("COMMIT").execute(&mut held).await.expect("commit");
    let woken = store.wait_for_log(LogPosition::START, Duration::from_secs(10)).await.expect("wait");
    assert!(woken);
    // Other tests' transactions may hold the horizon a little longer: read until complete.
    let (mut cursor, mut all) = (LogPosition::START, Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while all.len() < 2 && tokio::time::Instant::now() < deadline {
        drain(&store, &mut cursor, &mut all).await;
        store.wait_for_log(cursor, Duration::from_millis(50)).await.expect("wait");
    }
    assert_eq!(all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["slow-1", "fast-1"]);
}

/// What the random writers committed: ids and per-stream counts.
#[derive(Default)]
struct Committed {
    ids: HashSet<Uuid>,
    rolled_back: HashSet<Uuid>,
}

/// One writer: transactions of 1–3 events on its own streams, held open for a random
/// time, committed or (one in eight) rolled back.
async fn random_writer(pool: PgPool, schema: String, writer: usize, events: usize, seed: u64) -> Committed {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ writer as u64);
    let mut versions = [0i64; 4];
    let mut done = Committed::default();
    while done.ids.len() < events {
        let mut tx = pool.begin().await.expect("begin");
        let stream_index = rng.gen_range(0..versions.len());
        let stream = format!("w{writer}-s{stream_index}");
        let mut ids = Vec::new();
        for k in 0..rng.gen_range(1..=3) {
            ids.push(insert_raw(&mut tx, &schema, &stream, versions[stream_index] + 1 + k).await);
        }
        let hold = rng.gen_range(0..2000);
        tokio::time::sleep(Duration::from_micros(hold)).await;
        if rng.gen_ratio(1, 8) {
            tx.rollback().await.expect("rollback");
            done.rolled_back.extend(ids);
        } else {
            tx.commit().await.expect("commit");
            versions[stream_index] += ids.len() as i64;
            done.ids.extend(ids);
        }
    }
    done
}

/// Runs `writers` random writers against a concurrent reader; returns what the reader
/// saw and what was committed and rolled back.
async fn random_run(
    schema: &TestSchema,
    gap_safe: bool,
    writers: usize,
    per_writer: usize,
    seed: u64,
) -> (Vec<RecordedEvent>, Committed) {
    let config = if gap_safe { PgStoreConfig::default() } else { PgStoreConfig::default().unsafe_disable_gap_safety() };
    let store = support::store(schema, config).await;
    let pool = PgPoolOptions::new().max_connections(writers as u32 + 2).connect(schema.url()).await.expect("pool");
    let finished = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, finished) = (store.clone(), finished.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (LogPosition::START, Vec::new());
            loop {
                let done = finished.load(Ordering::Acquire);
                let page = store.read_log(cursor, 200).await.expect("read");
                if let Some(last) = page.last() {
                    cursor = last.position;
                    seen.extend(page);
                } else if done {
                    return (seen, cursor);
                } else {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(random_writer(pool.clone(), schema.name().to_owned(), w, per_writer, seed)))
        .collect();
    let mut committed = Committed::default();
    for t in tasks {
        let c = t.await.expect("writer");
        committed.ids.extend(c.ids);
        committed.rolled_back.extend(c.rolled_back);
    }
    finished.store(true, Ordering::Release);
    let (mut seen, mut cursor) = reader.await.expect("reader");
    // Transactions elsewhere in the cluster may still hold the horizon: wait them out
    // (a reader without the horizon sees every commit at once: nothing to wait for).
    let patience = if gap_safe { 30 } else { 0 };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(patience);
    while seen.len() < committed.ids.len() && tokio::time::Instant::now() < deadline {
        store.wait_for_log(cursor, Duration::from_millis(50)).await.expect("wait");
        drain(&store, &mut cursor, &mut seen).await;
    }
    (seen, committed)
}

fn seed() -> u64 {
    let seed = std::env::var("TIDEMARK_GAP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed {seed} (replay with TIDEMARK_GAP_SEED={seed})");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_writers_with_rollbacks_are_read_exactly_once_in_order() {
    let schema = TestSchema::new().await;
    let seed = seed();
    let (seen, committed) = random_run(&schema, true, 16, 650, seed).await;
    assert!(committed.ids.len() >= 10_000, "only {} events committed", committed.ids.len());
    let ids: Vec<Uuid> = seen.iter().map(|e| e.event_id.0).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was delivered twice (seed {seed})");
    assert!(unique.is_disjoint(&committed.rolled_back), "a rolled-back event was delivered (seed {seed})");
    let missing = committed.ids.difference(&unique).count();
    assert_eq!(missing, 0, "{missing} committed events were never delivered (seed {seed})");
    assert_per_stream_order(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_horizon_random_writers_lose_events() {
    let schema = TestSchema::new().await;
    let seed = seed();
    // Out-of-order commits are near certain at this size; a few rounds make it certain enough.
    for round in 0..5 {
        let (seen, committed) = random_run(&schema, false, 16, 200, seed + round).await;
        let unique: HashSet<Uuid> = seen.iter().map(|e| e.event_id.0).collect();
        let missing = committed.ids.difference(&unique).count();
        if missing > 0 {
            println!("round {round}: the unsafe reader lost {missing} of {} events", committed.ids.len());
            return;
        }
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", schema.name())).execute(schema.pool()).await.expect("reset");
    }
    panic!("the unsafe reader lost nothing in five rounds: the scenario does not exercise out-of-order commits");
}

#[tokio::test]
async fn read_tail_says_when_committed_events_are_held_back_behind_an_older_transaction() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let mut older = PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut older).await.expect("begin");
    // Takes a transaction id older than the append's; writes nothing, sends no NOTIFY.
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut older).await.expect("xid");
    store.append(support::append("held-1", ExpectedVersion::NoStream, 2)).await.expect("append");

    let tail = store.read_tail(LogPosition::START, 100).await.expect("tail");
    assert!(tail.events.is_empty(), "an event above the horizon was returned: {:?}", tail.events);
    assert!(tail.held_back, "the committed events behind the open transaction were not reported");

    sqlx::query("COMMIT").execute(&mut older).await.expect("commit");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let tail = loop {
        // Other tests' transactions in the cluster may hold the horizon for a moment.
        let tail = store.read_tail(LogPosition::START, 100).await.expect("tail");
        if tail.events.len() == 2 || tokio::time::Instant::now() >= deadline {
            break tail;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(tail.events.len(), 2, "the events did not become readable");
    let last = tail.events[1].position;
    let after = store.read_tail(last, 100).await.expect("tail after the last event");
    assert!(after.events.is_empty());
    assert!(!after.held_back, "nothing is committed after the last event, yet something is held back");
    let limited = store.read_tail(LogPosition::START, 1).await.expect("a page of one");
    assert_eq!(limited.events.len(), 1);
}

#[tokio::test]
async fn without_the_horizon_read_tail_holds_nothing_back() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default().unsafe_disable_gap_safety()).await;
    let mut older = PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut older).await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut older).await.expect("xid");
    store.append(support::append("unsafe-1", ExpectedVersion::NoStream, 1)).await.expect("append");
    let tail = store.read_tail(LogPosition::START, 100).await.expect("tail");
    assert_eq!(tail.events.len(), 1);
    assert!(!tail.held_back);
    sqlx::query("ROLLBACK").execute(&mut older).await.expect("rollback");
}

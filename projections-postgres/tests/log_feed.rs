//! The PostgreSQL feed on a real store: every event reaches its partition once, in log
//! order, from the cursor given; events held back behind an older transaction arrive
//! soon after it commits, with nothing skipped, even though its commit wakes nobody; a
//! wake-up brings an append within a bound far below the poll interval.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tidemark::{AppendRequest, EventStore as _, ExpectedVersion, LogPosition, RecordedEvent};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{Feed, FeedCursor, Incoming, Subscription};
use tidemark_projections_postgres::{PgLogFeed, PgLogSubscription};
use tidemark_testkit::TestSchema;

use support::{append_rounds, events, read_log, stream, DEADLINE};

async fn store(schema: &TestSchema, poll: Duration) -> PgEventStore {
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(poll);
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    store
}

fn trusted(message: &Incoming) -> &RecordedEvent {
    match message {
        Incoming::Trusted(event) => event,
        other => panic!("the PostgreSQL feed delivered something other than a trusted event: {other:?}"),
    }
}

/// Takes batches until `count` events arrived, failing after `within`.
async fn take(
    subscription: &mut PgLogSubscription,
    count: usize,
    within: Duration,
) -> Vec<(FeedCursor, RecordedEvent)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    while got.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = tokio::time::timeout(left, subscription.next_batch(5))
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events arrived within {within:?}", got.len()))
            .expect("next batch");
        assert!(!batch.is_empty() && batch.len() <= 5, "a batch of {} for at most 5", batch.len());
        got.extend(batch.cursors.into_iter().zip(batch.messages.iter().map(|m| trusted(m).clone())));
    }
    got
}

#[tokio::test]
async fn every_event_reaches_its_partition_once_in_log_order() {
    let schema = TestSchema::new().await;
    let store = store(&schema, Duration::from_millis(50)).await;
    // Pages of 7 events, so that a partition's events span many pages of the log.
    let feed = PgLogFeed::new(store.clone(), 3).expect("feed").page_size(7);
    append_rounds(&store, 12, 3, 2).await;
    let head = store.log_head().await.expect("head").expect("events");
    let log = read_log(&store, head).await;
    assert_eq!(log.len(), 72);

    let mut seen = BTreeSet::new();
    for partition in 0..3 {
        let expected: Vec<_> = log.iter().filter(|e| feed.partition_of(&e.stream_id) == partition).collect();
        let mut subscription = feed.subscribe("tally", partition, None).await.expect("subscribe");
        let got = take(&mut subscription, expected.len(), DEADLINE).await;
        let ids: Vec<_> = got.iter().map(|(_, e)| e.event_id).collect();
        assert_eq!(ids, expected.iter().map(|e| e.event_id).collect::<Vec<_>>(), "partition {partition}");
        for (cursor, event) in &got {
            assert_eq!(cursor.epoch as u64, event.position.transaction_id, "the cursor is the log position");
            assert_eq!(cursor.sequence, event.position.sequence);
            assert!(seen.insert(event.event_id), "{} delivered to two partitions", event.event_id);
        }
        // Nothing more: the next read waits.
        let more = tokio::time::timeout(Duration::from_millis(300), subscription.next_batch(5)).await;
        assert!(more.is_err(), "delivered more than the partition holds: {more:?}");

        // Opened again after the cursor of its third event, it starts with the fourth.
        let mut again = feed.subscribe("tally", partition, Some(got[2].0)).await.expect("subscribe");
        let rest = take(&mut again, expected.len() - 3, DEADLINE).await;
        assert_eq!(rest[0].1.event_id, got[3].1.event_id);
        assert_eq!(rest.len(), expected.len() - 3);
    }
    assert_eq!(seen.len(), log.len(), "every event reached a partition");

    // A cursor that names no event of the log (another feed's) starts from the beginning.
    let foreign = FeedCursor::new(1_765_000_000_000_000_000, 17);
    let mut subscription = feed.subscribe("tally", 0, Some(foreign)).await.expect("subscribe");
    let first = take(&mut subscription, 1, DEADLINE).await;
    let first_of_partition = log.iter().find(|e| feed.partition_of(&e.stream_id) == 0).expect("an event");
    assert_eq!(first[0].1.event_id, first_of_partition.event_id);
    assert!(feed.subscribe("tally", 3, None).await.is_err(), "partition 3 of 3 does not exist");
    assert!(PgLogFeed::new(store, 0).is_err(), "a feed of no partitions");
}

/// Inserts one event the way the store does, inside the caller's open transaction (which
/// sends no wake-up when it commits).
async fn insert_raw(conn: &mut PgConnection, schema: &str, stream: &str) {
    let sql = format!(
        "INSERT INTO \"{schema}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES ($1, $2, 1, 'Deposited', 1, '{{\"amount\":1}}')"
    );
    sqlx::query(&sql).bind(uuid::Uuid::now_v7()).bind(stream).execute(conn).await.expect("raw insert");
}

#[tokio::test]
async fn events_held_back_by_an_older_transaction_arrive_soon_after_it_commits_without_a_gap() {
    let schema = TestSchema::new().await;
    // A poll interval far above the bound asserted: only the re-read of a held-back page
    // can bring the events in time, since the older transaction's commit wakes nobody.
    let store = store(&schema, Duration::from_secs(30)).await;
    let feed = PgLogFeed::new(store.clone(), 1).expect("feed");
    let mut subscription = feed.subscribe("tally", 0, None).await.expect("subscribe");

    let mut older = PgConnection::connect(schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut older).await.expect("begin");
    insert_raw(&mut older, schema.name(), "account-slow").await;
    for n in 0..2 {
        let request = AppendRequest::new(stream(n), ExpectedVersion::NoStream, events(n, 0, 1));
        store.append(request).await.expect("append");
    }
    // The appends woke the subscription; their events are held back behind the open
    // transaction, so it delivers nothing. The same call goes on waiting while the older
    // transaction commits: it must find the events without being woken.
    let (first, took) = {
        let pending = subscription.next_batch(10);
        tokio::pin!(pending);
        tokio::select! {
            early = &mut pending => panic!("events above the horizon were delivered: {early:?}"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        sqlx::query("COMMIT").execute(&mut older).await.expect("commit");
        let committed = Instant::now();
        let first = tokio::time::timeout(Duration::from_secs(20), pending).await.expect("delivered").expect("batch");
        (first, committed.elapsed())
    };
    let mut got: Vec<_> = first.cursors.into_iter().zip(first.messages.iter().map(|m| trusted(m).clone())).collect();
    got.extend(take(&mut subscription, 3 - got.len(), Duration::from_secs(20)).await);
    let streams: Vec<_> = got.iter().map(|(_, e)| e.stream_id.to_string()).collect();
    assert_eq!(streams, ["account-slow", stream(0).to_string().as_str(), stream(1).to_string().as_str()]);
    // Other tests' transactions in the cluster may hold the horizon a little longer.
    assert!(took < Duration::from_secs(3), "held-back events took {took:?} (poll interval 30 s)");
    let head = store.log_head().await.expect("head").expect("events");
    assert_eq!(got[2].1.position, head, "nothing after the last event delivered");
}

#[tokio::test]
async fn a_wake_up_brings_an_append_within_a_bound() {
    let schema = TestSchema::new().await;
    let store = store(&schema, Duration::from_secs(30)).await;
    let feed = PgLogFeed::new(store.clone(), 1).expect("feed");
    let mut subscription = feed.subscribe("tally", 0, None).await.expect("subscribe");
    let mut slowest = Duration::ZERO;
    for n in 0..10 {
        let waiting = tokio::spawn(async move {
            let batch = subscription.next_batch(10).await.expect("next batch");
            (subscription, batch, Instant::now())
        });
        // Let the subscription reach its wait before the append (not required for
        // correctness: a wake-up before the wait is kept).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let appended = Instant::now();
        let request = AppendRequest::new(stream(n), ExpectedVersion::NoStream, events(n, 0, 1));
        let outcome = store.append(request).await.expect("append");
        let (back, batch, delivered) =
            tokio::time::timeout(DEADLINE, waiting).await.expect("delivered").expect("joined");
        subscription = back;
        assert_eq!(batch.len(), 1);
        assert_eq!(trusted(&batch.messages[0]).position, outcome.last_position.expect("a position"));
        slowest = slowest.max(delivered.duration_since(appended));
    }
    println!("slowest wake-up to delivery over 10 appends: {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "a wake-up took {slowest:?} (poll interval 30 s)");
    assert_ne!(LogPosition::START, store.log_head().await.expect("head").expect("events"));
}

//! Archiving deleted streams: their events move into `archived_events` whole and
//! unchanged, readers see the same events as before, and the database still refuses any
//! other change or removal.

mod support;

use std::time::Duration;

use tidemark::{read_stream_to_end, Error, EventStore, ExpectedVersion, LogPosition, RecordedEvent, StreamVersion};
use tidemark_postgres::{ArchivePolicy, ArchiveReport, PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

/// Every stored event of both tables, each as one JSON text of its columns, by event id.
async fn stored_rows(schema: &TestSchema) -> Vec<(String, String)> {
    let columns = "sequence, transaction_id, event_id, stream_id, stream_version, event_type, schema_version, \
                   payload, correlation_id, causation_id, metadata, recorded_at";
    let s = schema.name();
    let sql = format!(
        "SELECT event_id::text, row_to_json(r)::text FROM ( \
           SELECT {columns} FROM \"{s}\".events UNION ALL SELECT {columns} FROM \"{s}\".archived_events) r \
         ORDER BY event_id"
    );
    sqlx::query_as(&sql).fetch_all(schema.pool()).await.expect("rows")
}

async fn count(schema: &TestSchema, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM \"{}\".{table}", schema.name());
    sqlx::query_scalar(&sql).fetch_one(schema.pool()).await.expect("count")
}

/// Appends `n` events to `id`, then (if `delete`) its tombstone; returns the last position.
async fn write(store: &PgEventStore, id: &str, n: u64, delete: bool) -> LogPosition {
    let mut last = store.append(support::append(id, ExpectedVersion::NoStream, n)).await.expect("append").last_position;
    if delete {
        let outcome = store.tombstone(&support::stream(id), ExpectedVersion::Exact(StreamVersion(n))).await;
        last = outcome.expect("tombstone").last_position;
    }
    last.expect("events were written")
}

/// Waits (at most 30 s) until the log is readable through `position`.
async fn settle(store: &PgEventStore, position: LogPosition) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.log_head().await.expect("head") < Some(position) {
        assert!(tokio::time::Instant::now() < deadline, "the log did not reach {position}");
        store.wait_for_log(position, Duration::from_millis(100)).await.expect("wait");
    }
}

async fn whole_log(store: &PgEventStore) -> Vec<RecordedEvent> {
    store.read_log(LogPosition::START, 10_000).await.expect("log")
}

fn ids(events: &[RecordedEvent]) -> Vec<(tidemark::EventId, LogPosition)> {
    events.iter().map(|e| (e.event_id, e.position)).collect()
}

#[track_caller]
fn assert_refused(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, what: &str) {
    let err = result.expect_err(what);
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("TM001"), "{what}: {err}");
}

#[tokio::test]
async fn archiving_moves_deleted_streams_whole_and_unchanged() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    write(&store, "old-1", 3, true).await;
    write(&store, "live-1", 2, false).await;
    let last = write(&store, "old-2", 2, true).await;
    settle(&store, last).await;
    store.save_checkpoint("relay:main", last).await.expect("checkpoint");
    let (rows_before, log_before) = (stored_rows(&schema).await, whole_log(&store).await);
    assert_eq!(log_before.len(), 9);

    let young = store.archive(&ArchivePolicy::default().older_than(Duration::from_secs(3600))).await.expect("archive");
    assert_eq!(young, ArchiveReport::default(), "tombstones younger than the age stay");
    let report = store.archive(&ArchivePolicy::default().older_than(Duration::ZERO)).await.expect("archive");
    assert_eq!(report, ArchiveReport { streams: 2, events: 5 });
    assert_eq!((count(&schema, "events").await, count(&schema, "archived_events").await), (4, 5));

    // Plain SQL: every event id once across the two tables, every column as it was.
    assert_eq!(stored_rows(&schema).await, rows_before, "archiving lost, duplicated or changed an event");
    // Readers see the same log, positions included, and the same streams.
    assert_eq!(ids(&whole_log(&store).await), ids(&log_before));
    let old = read_stream_to_end(&store, &support::stream("old-1"), StreamVersion(1), 2).await.expect("read");
    assert_eq!(old.iter().map(|e| e.stream_version.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(old[3].is_tombstone());
    assert_eq!(store.stream_version(&support::stream("old-1")).await.expect("version"), StreamVersion(4));
    let verified = store.verify_events(&log_before.iter().collect::<Vec<_>>()).await.expect("verify");
    assert!(verified.is_empty(), "archived events still verify: {verified:?}");

    // An archived stream is still deleted, for every expected version.
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any, ExpectedVersion::Exact(StreamVersion(3))] {
        let result = store.append(support::append("old-1", expected, 1)).await;
        assert!(
            matches!(result, Err(Error::StreamDeleted { version: StreamVersion(4), .. })),
            "{expected}: {result:?}"
        );
    }
    // A second run finds nothing left to move.
    let again = store.archive(&ArchivePolicy::default().older_than(Duration::ZERO)).await.expect("archive");
    assert_eq!(again, ArchiveReport::default());
}

#[tokio::test]
async fn only_archived_copies_of_deleted_streams_may_leave_the_events_table() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    write(&store, "gone-1", 2, true).await;
    write(&store, "sealed-1", 2, true).await;
    let last = write(&store, "live-1", 2, false).await;
    settle(&store, last).await;
    store.save_checkpoint("relay:main", last).await.expect("checkpoint");
    let policy = ArchivePolicy::default().older_than(Duration::ZERO).streams_per_transaction(1);
    let report = store.archive(&policy).await.expect("archive");
    assert_eq!(report, ArchiveReport { streams: 2, events: 4 }, "one stream per transaction, all of them");
    // One more deleted stream, sealed but not archived.
    let last = write(&store, "sealed-2", 2, true).await;
    settle(&store, last).await;
    let s = schema.name();
    let copy = |stream: &str, payload: &str| {
        format!(
            "INSERT INTO \"{s}\".archived_events (sequence, transaction_id, event_id, stream_id, stream_version, \
               event_type, schema_version, payload, correlation_id, causation_id, metadata, recorded_at) \
             SELECT sequence, transaction_id, event_id, stream_id, stream_version, event_type, schema_version, \
               {payload}, correlation_id, causation_id, metadata, recorded_at \
             FROM \"{s}\".events WHERE stream_id = '{stream}' AND stream_version = 1"
        )
    };
    // A live stream's event, even with an identical copy archived, stays.
    sqlx::query(&copy("live-1", "payload")).execute(schema.pool()).await.expect("copy");
    let delete = |stream: &str, version: u64| {
        format!("DELETE FROM \"{s}\".events WHERE stream_id = '{stream}' AND stream_version = {version}")
    };
    assert_refused(sqlx::query(&delete("live-1", 1)).execute(schema.pool()).await, "a live event");
    // A sealed stream's event without an identical copy stays: no copy, then a changed copy.
    assert_refused(sqlx::query(&delete("sealed-2", 2)).execute(schema.pool()).await, "an event without a copy");
    sqlx::query(&copy("sealed-2", "'{\"forged\":true}'")).execute(schema.pool()).await.expect("copy");
    assert_refused(sqlx::query(&delete("sealed-2", 1)).execute(schema.pool()).await, "an event with a changed copy");
    // A tombstone never leaves; updates and truncation of either table are refused.
    assert_refused(sqlx::query(&delete("gone-1", 3)).execute(schema.pool()).await, "a tombstone");
    for sql in [
        format!("UPDATE \"{s}\".events SET payload = '{{}}' WHERE stream_id = 'live-1'"),
        format!("TRUNCATE \"{s}\".events"),
        format!("UPDATE \"{s}\".archived_events SET payload = '{{}}'"),
        format!("DELETE FROM \"{s}\".archived_events"),
        format!("TRUNCATE \"{s}\".archived_events"),
    ] {
        assert_refused(sqlx::query(&sql).execute(schema.pool()).await, &sql);
    }
    assert_eq!(count(&schema, "events").await, 2 + 2 + 3, "two tombstones, live-1 and sealed-2 are all there");
}

#[tokio::test]
async fn archiving_waits_for_the_relay_and_the_horizon() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let first = write(&store, "early-1", 2, true).await;
    settle(&store, first).await;
    let all = ArchivePolicy::default().older_than(Duration::ZERO);
    assert_eq!(store.archive(&all).await.expect("archive"), ArchiveReport::default(), "no relay checkpoint yet");
    store
        .save_checkpoint("relay:main", LogPosition::new(first.transaction_id, first.sequence - 1))
        .await
        .expect("save");
    assert_eq!(store.archive(&all).await.expect("archive"), ArchiveReport::default(), "the tombstone is not relayed");
    store.save_checkpoint("relay:main", first).await.expect("save");

    // A transaction that began before the next stream's holds the horizon below it.
    let mut holder = schema.pool().begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *holder).await.expect("take an xid");
    write(&store, "late-1", 2, true).await;
    let unrelayed = all.clone().relayed_only(false);
    let report = store.archive(&unrelayed).await.expect("archive");
    assert_eq!(report, ArchiveReport { streams: 1, events: 2 }, "only the stream below the horizon moves");
    holder.commit().await.expect("commit");
    let report = store.archive(&unrelayed).await.expect("archive");
    assert_eq!(report, ArchiveReport { streams: 1, events: 2 }, "the later stream moves once the horizon passes it");
}

//! Shared set-up of the store's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::value::RawValue;
use tidemark::{AppendRequest, ExpectedVersion, NewEvent, StreamId};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

/// A migrated store in a fresh schema, polling fast.
pub(crate) async fn store(schema: &TestSchema, config: PgStoreConfig) -> PgEventStore {
    let config = config.schema(schema.name()).poll_interval(Duration::from_millis(10));
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    store
}

pub(crate) fn stream(id: &str) -> StreamId {
    StreamId::new(id).expect("valid stream id")
}

pub(crate) fn event(n: u64) -> NewEvent {
    let payload = RawValue::from_string(format!("{{\"n\":{n}}}")).expect("json");
    NewEvent::new("Ticked", 1, payload)
}

pub(crate) fn append(id: &str, expected: ExpectedVersion, count: u64) -> AppendRequest {
    AppendRequest::new(stream(id), expected, (0..count).map(event).collect())
}

/// Reads the whole log, waiting (at most 30 s) until it holds `count` events: other tests'
/// transactions in the same cluster may hold the horizon back for a moment.
pub(crate) async fn log_of(store: &PgEventStore, count: usize) -> Vec<tidemark::RecordedEvent> {
    use tidemark::{EventStore, LogPosition};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = store.read_log(LogPosition::START, count + 100).await.expect("read log");
        if log.len() >= count || tokio::time::Instant::now() >= deadline {
            return log;
        }
        let after = log.last().map_or(LogPosition::START, |e| e.position);
        store.wait_for_log(after, Duration::from_millis(100)).await.expect("wait");
    }
}

//! Small builders and assertions shared by the contract cases.
//!
//! The global log may make an event readable some time after its append returned: a
//! gap-safe store shows an event only once every transaction that could be ordered
//! before it has finished, anywhere on the server. So the helpers that append wait
//! (bounded) until the log has caught up with what they appended, and "nothing was
//! written" is checked by appending a marker and finding nothing but markers in the
//! log once the marker is readable.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tidemark::{
    read_stream_to_end, AppendOutcome, AppendRequest, Error, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, Result, StreamId, StreamVersion,
};
use uuid::Uuid;

/// The type name of the events the suite writes.
pub(crate) const EVENT_TYPE: &str = "ContractEvent";

/// The type name of the markers [`assert_unchanged`] appends.
const MARKER_TYPE: &str = "ContractMarker";

/// How long the log may take to show an appended event.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh stream id, `contract-<tag>_<uuid>`, so cases never share streams.
pub(crate) fn stream(tag: &str) -> StreamId {
    StreamId::for_entity("contract", format!("{tag}_{}", Uuid::now_v7().simple())).expect("tags are letters and digits")
}

/// A JSON payload as stored.
pub(crate) fn raw(value: &Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value serialises")
}

/// An event with payload `{"n": n}`, a fresh id and empty metadata.
pub(crate) fn event(n: u64) -> NewEvent {
    NewEvent::new(EVENT_TYPE, 1, raw(&json!({ "n": n })))
}

/// Events numbered `from..from + count`.
pub(crate) fn events(from: u64, count: u64) -> Vec<NewEvent> {
    (from..from + count).map(event).collect()
}

/// A stored payload, parsed (stores may re-encode JSON text, e.g. as `jsonb`).
pub(crate) fn payload(event: &RecordedEvent) -> Value {
    serde_json::from_str(event.payload.get()).expect("stored payloads are JSON")
}

/// Waits until the log is readable up to `position` (at most 30 s); panics if it is not.
pub async fn settle<S: EventStore>(store: &S, position: Option<LogPosition>) {
    let Some(position) = position else { return };
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let head = store.log_head().await.expect("the head reads");
        if head >= Some(position) {
            return;
        }
        let now = Instant::now();
        assert!(now < deadline, "the log did not show {position} within {SETTLE_TIMEOUT:?} (head {head:?})");
        let step = (deadline - now).min(Duration::from_millis(100));
        let after = head.unwrap_or(LogPosition::START);
        store.wait_for_log(after, step).await.expect("waiting works");
    }
}

/// Appends, failing the test on an error, and waits until the log shows the events.
pub(crate) async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendOutcome {
    let request = AppendRequest::new(stream.clone(), expected, events);
    let outcome = store.append(request).await.expect("the append is accepted");
    settle(store, outcome.last_position).await;
    outcome
}

/// Appends without any expectation.
pub(crate) async fn try_append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendOutcome> {
    store.append(AppendRequest::new(stream.clone(), expected, events)).await
}

/// A whole stream.
pub(crate) async fn whole_stream<S: EventStore>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    read_stream_to_end(store, stream, StreamVersion(1), 100).await.expect("the stream reads")
}

/// Every event of the log after `after`, read in pages.
pub(crate) async fn log_after<S: EventStore>(store: &S, after: LogPosition) -> Vec<RecordedEvent> {
    let mut all: Vec<RecordedEvent> = Vec::new();
    loop {
        let cursor = all.last().map_or(after, |e| e.position);
        let page = store.read_log(cursor, 100).await.expect("the log reads");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Where the log ends now (the start of the log when it is empty).
pub(crate) async fn head<S: EventStore>(store: &S) -> LogPosition {
    store.log_head().await.expect("the head reads").unwrap_or(LogPosition::START)
}

/// Asserts a conflict with exactly these data.
#[track_caller]
pub(crate) fn assert_conflict(
    result: Result<AppendOutcome>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(Error::Conflict { stream: s, expected: e, actual: a }) => {
            assert_eq!(&s, stream, "conflict names the stream");
            assert_eq!(e, expected, "conflict carries the expected version");
            assert_eq!(a, StreamVersion(actual), "conflict carries the actual version");
        }
        other => panic!("expected a conflict on {stream} ({expected}), got {other:?}"),
    }
}

/// Asserts that a stream still holds `version` events and that the log holds nothing
/// after `log_head` but markers: appends a marker to a stream of its own, waits until
/// it is readable, then reads the log after `log_head`.
pub(crate) async fn assert_unchanged<S: EventStore>(store: &S, stream: &StreamId, version: u64, log_head: LogPosition) {
    assert_eq!(store.stream_version(stream).await.unwrap(), StreamVersion(version));
    assert_eq!(whole_stream(store, stream).await.len() as u64, version);
    let marker = NewEvent::new(MARKER_TYPE, 1, raw(&json!({})));
    let marker_id = marker.event_id;
    append(store, &self::stream("marker"), ExpectedVersion::NoStream, vec![marker]).await;
    let since = log_after(store, log_head).await;
    let written: Vec<_> = since.iter().filter(|e| e.event_type != MARKER_TYPE).collect();
    assert!(written.is_empty(), "nothing but markers was written: {written:?}");
    assert_eq!(since.last().map(|e| e.event_id), Some(marker_id));
}

/// Asserts that positions strictly increase along `events`.
#[track_caller]
pub(crate) fn assert_strictly_increasing(events: &[RecordedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions must strictly increase in log order: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
}

/// Asserts that two reads of one event agree on everything.
#[track_caller]
pub(crate) fn assert_same_event(a: &RecordedEvent, b: &RecordedEvent) {
    assert_eq!(a.event_id, b.event_id);
    assert_eq!(a.stream_id, b.stream_id);
    assert_eq!(a.stream_version, b.stream_version);
    assert_eq!(a.position, b.position);
    assert_eq!(a.event_type, b.event_type);
    assert_eq!(a.schema_version, b.schema_version);
    assert_eq!(payload(a), payload(b));
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.recorded_at, b.recorded_at);
}

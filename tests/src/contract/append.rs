//! Appending: what is stored, optimistic concurrency, empty appends.

use chrono::{Duration, Utc};
use serde_json::json;
use tidemark::{AppendRequest, CommandId, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, StreamVersion};
use uuid::Uuid;

use super::fixture::*;

/// Every field written comes back from `read_stream` and `read_log`; versions count
/// from 1 per stream; positions strictly increase in log order.
pub async fn append_and_read_round_trip<S: EventStore>(store: S) {
    let start = head(&store).await;
    let (a, b) = (stream("roundtrip"), stream("roundtrip"));
    let rich = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with_causation_id(Uuid::now_v7())
        .with_user("alice")
        .with_tenant("acme")
        .with_header("ip", "10.0.0.1")
        .with_header("trace", "a\"b é");
    let odd = json!({ "text": "quote \" slash \\ é 🦀", "list": [1, -2, 2.5, null], "nested": { "ok": true } });
    // A stream keeps its first event's tenant: every event of `a` carries it.
    let acme = Metadata::new().with_tenant("acme");
    let written_a = [
        event(1).with_metadata(rich.clone()),
        NewEvent::new("OtherEvent", 4, raw(&odd)).with_metadata(acme.clone()),
        event(3).with_metadata(acme),
    ];
    let written_b = [event(10), event(11)];
    let before = Utc::now();
    let first = append(&store, &a, ExpectedVersion::NoStream, written_a[..2].to_vec()).await;
    let other = append(&store, &b, ExpectedVersion::NoStream, written_b[..1].to_vec()).await;
    let third = append(&store, &a, ExpectedVersion::Exact(StreamVersion(2)), written_a[2..].to_vec()).await;
    let last = append(&store, &b, ExpectedVersion::Exact(StreamVersion(1)), written_b[1..].to_vec()).await;
    let after = Utc::now();

    let read_a = whole_stream(&store, &a).await;
    assert_eq!(read_a.len(), 3);
    for (i, (read, written)) in read_a.iter().zip(&written_a).enumerate() {
        assert_eq!(read.event_id, written.event_id);
        assert_eq!(read.stream_id, a);
        assert_eq!(read.stream_version, StreamVersion(i as u64 + 1));
        assert_eq!(read.event_type, written.event_type);
        assert_eq!(read.schema_version, written.schema_version);
        assert_eq!(payload(read), serde_json::from_str::<serde_json::Value>(written.payload.get()).unwrap());
        assert_eq!(read.metadata, written.metadata);
        let slack = Duration::seconds(60);
        assert!(read.recorded_at > before - slack && read.recorded_at < after + slack);
    }
    assert_eq!(read_a[0].metadata, rich, "metadata with headers round-trips");
    assert_eq!(read_a[1].schema_version, 4);

    let read_b = whole_stream(&store, &b).await;
    let versions: Vec<u64> = read_b.iter().map(|e| e.stream_version.0).collect();
    assert_eq!(versions, vec![1, 2]);

    // Outcomes describe what was written.
    assert_eq!((first.previous_version, first.version), (StreamVersion(0), StreamVersion(2)));
    assert_eq!((third.previous_version, third.version), (StreamVersion(2), StreamVersion(3)));
    assert_eq!(first.last_position, Some(read_a[1].position));
    assert_eq!(third.last_position, Some(read_a[2].position));
    assert_eq!(other.last_position, Some(read_b[0].position));
    assert_eq!(last.last_position, Some(read_b[1].position));
    for outcome in [&first, &other, &third, &last] {
        assert!(!outcome.duplicate);
        assert_eq!(outcome.command_id, None);
    }
    assert_eq!((first.stream_id.clone(), other.stream_id.clone()), (a.clone(), b.clone()));

    // The log holds the same events, in append order, with increasing positions.
    let log = log_after(&store, start).await;
    let expected = [&read_a[0], &read_a[1], &read_b[0], &read_a[2], &read_b[1]];
    assert_eq!(log.len(), expected.len());
    for (logged, read) in log.iter().zip(expected) {
        assert_same_event(logged, read);
    }
    assert_strictly_increasing(&log);
    assert!(log[0].position > start);
}

/// `ExpectedVersion::Any` accepts an empty and an existing stream.
pub async fn expected_any<S: EventStore>(store: S) {
    let s = stream("any");
    let first = append(&store, &s, ExpectedVersion::Any, events(1, 2)).await;
    assert_eq!((first.previous_version, first.version), (StreamVersion(0), StreamVersion(2)));
    let second = append(&store, &s, ExpectedVersion::Any, events(3, 1)).await;
    assert_eq!((second.previous_version, second.version), (StreamVersion(2), StreamVersion(3)));
}

/// `NoStream` (and its synonym `Exact(0)`) accepts only a stream without events.
pub async fn expected_no_stream<S: EventStore>(store: S) {
    let s = stream("nostream");
    append(&store, &s, ExpectedVersion::NoStream, events(1, 1)).await;
    let log_head = head(&store).await;
    let result = try_append(&store, &s, ExpectedVersion::NoStream, events(2, 1)).await;
    assert_conflict(result, &s, ExpectedVersion::NoStream, 1);
    let zero = ExpectedVersion::Exact(StreamVersion(0));
    assert_conflict(try_append(&store, &s, zero, events(2, 1)).await, &s, zero, 1);
    assert_unchanged(&store, &s, 1, log_head).await;

    let fresh = stream("nostream");
    let outcome = append(&store, &fresh, zero, events(3, 2)).await;
    assert_eq!(outcome.version, StreamVersion(2));
}

/// `StreamExists` accepts only a stream with events.
pub async fn expected_stream_exists<S: EventStore>(store: S) {
    let s = stream("exists");
    let log_head = head(&store).await;
    let result = try_append(&store, &s, ExpectedVersion::StreamExists, events(1, 1)).await;
    assert_conflict(result, &s, ExpectedVersion::StreamExists, 0);
    assert_unchanged(&store, &s, 0, log_head).await;
    append(&store, &s, ExpectedVersion::NoStream, events(1, 1)).await;
    let outcome = append(&store, &s, ExpectedVersion::StreamExists, events(2, 2)).await;
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(1), StreamVersion(3)));
}

/// `Exact(n)` accepts only a stream at n: stale and future versions conflict.
pub async fn expected_exact<S: EventStore>(store: S) {
    let s = stream("exact");
    append(&store, &s, ExpectedVersion::Exact(StreamVersion(0)), events(1, 2)).await;
    let outcome = append(&store, &s, ExpectedVersion::Exact(StreamVersion(2)), events(3, 1)).await;
    assert_eq!(outcome.version, StreamVersion(3));
    let log_head = head(&store).await;
    for wrong in [0, 1, 2, 4, 100] {
        let expected = ExpectedVersion::Exact(StreamVersion(wrong));
        assert_conflict(try_append(&store, &s, expected, events(9, 1)).await, &s, expected, 3);
    }
    assert_unchanged(&store, &s, 3, log_head).await;
}

/// A conflicting append writes nothing: no events, no command record, and neither its
/// event ids nor its command id are used up.
pub async fn conflict_writes_nothing<S: EventStore>(store: S) {
    let s = stream("conflict");
    append(&store, &s, ExpectedVersion::NoStream, events(1, 2)).await;
    let log_head = head(&store).await;
    let (command, batch) = (CommandId::new(), events(3, 3));
    let stale =
        AppendRequest::new(s.clone(), ExpectedVersion::Exact(StreamVersion(1)), batch.clone()).with_command_id(command);
    let stale_expected = ExpectedVersion::Exact(StreamVersion(1));
    assert_conflict(store.append(stale).await, &s, stale_expected, 2);
    assert_unchanged(&store, &s, 2, log_head).await;
    assert_eq!(store.command_outcome(command).await.unwrap(), None);

    let retry =
        AppendRequest::new(s.clone(), ExpectedVersion::Exact(StreamVersion(2)), batch.clone()).with_command_id(command);
    let outcome = store.append(retry).await.expect("ids are free after a conflict");
    assert_eq!((outcome.version, outcome.duplicate), (StreamVersion(5), false));
    let ids: Vec<_> = whole_stream(&store, &s).await[2..].iter().map(|e| e.event_id).collect();
    assert_eq!(ids, batch.iter().map(|e| e.event_id).collect::<Vec<_>>());
}

/// An append without events checks the expected version and writes nothing.
pub async fn empty_append<S: EventStore>(store: S) {
    let s = stream("empty");
    let log_head = head(&store).await;
    let outcome = append(&store, &s, ExpectedVersion::NoStream, Vec::new()).await;
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(0), StreamVersion(0)));
    assert_eq!((outcome.last_position, outcome.duplicate), (None, false));
    assert_unchanged(&store, &s, 0, log_head).await;

    append(&store, &s, ExpectedVersion::NoStream, events(1, 2)).await;
    let log_head = head(&store).await;
    let outcome = append(&store, &s, ExpectedVersion::Exact(StreamVersion(2)), Vec::new()).await;
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(2), StreamVersion(2)));
    assert_eq!(outcome.last_position, None);
    let stale = ExpectedVersion::Exact(StreamVersion(1));
    assert_conflict(try_append(&store, &s, stale, Vec::new()).await, &s, stale, 2);
    assert_unchanged(&store, &s, 2, log_head).await;
    assert_ne!(log_head, LogPosition::START);
}

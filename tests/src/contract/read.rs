//! Reading one stream, paging through the log, the version and head queries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tidemark::{EventId, EventStore, ExpectedVersion, StreamVersion};

use super::fixture::*;

/// `read_stream` starts at the given version (inclusive) and returns at most `limit` events.
pub async fn read_stream_ranges<S: EventStore>(store: S) {
    let (s, other) = (stream("ranges"), stream("ranges"));
    append(&store, &s, ExpectedVersion::NoStream, events(1, 4)).await;
    append(&store, &other, ExpectedVersion::NoStream, events(100, 3)).await;
    append(&store, &s, ExpectedVersion::Exact(StreamVersion(4)), events(5, 6)).await;

    let versions =
        |events: &[tidemark::RecordedEvent]| -> Vec<u64> { events.iter().map(|e| e.stream_version.0).collect() };
    let read = |from: u64, limit: usize| store.read_stream(&s, StreamVersion(from), limit);
    assert_eq!(versions(&read(4, 3).await.unwrap()), vec![4, 5, 6]);
    assert_eq!(versions(&read(9, 10).await.unwrap()), vec![9, 10]);
    assert_eq!(versions(&read(1, 100).await.unwrap()), (1..=10).collect::<Vec<_>>());
    assert_eq!(versions(&read(0, 2).await.unwrap()), vec![1, 2], "version 0 reads from the start");
    assert!(read(11, 10).await.unwrap().is_empty());
    assert!(read(1, 0).await.unwrap().is_empty());
    let middle = read(6, 1).await.unwrap();
    assert_eq!(payload(&middle[0])["n"], 6);
    assert!(middle.iter().all(|e| e.stream_id == s));

    let unknown = stream("ranges");
    assert!(store.read_stream(&unknown, StreamVersion(1), 10).await.unwrap().is_empty());
    let all = tidemark::read_stream_to_end(&store, &s, StreamVersion(1), 3).await.unwrap();
    assert_eq!(versions(&all), (1..=10).collect::<Vec<_>>());
}

/// Paging through the log with the last position seen as cursor returns every event
/// once, in append order.
pub async fn read_log_paging<S: EventStore>(store: S) {
    let start = head(&store).await;
    let streams = [stream("paging"), stream("paging"), stream("paging")];
    let mut written: Vec<EventId> = Vec::new();
    let mut n = 0;
    for (i, size) in [1u64, 3, 2, 5, 1, 4, 2, 1, 3, 6, 1, 2].into_iter().enumerate() {
        let batch = events(n, size);
        n += size;
        written.extend(batch.iter().map(|e| e.event_id));
        append(&store, &streams[i % 3], ExpectedVersion::Any, batch).await;
    }
    for page in [1, 7, 31, 1000] {
        let mut seen = Vec::new();
        let mut cursor = start;
        loop {
            let batch = store.read_log(cursor, page).await.unwrap();
            assert!(batch.len() <= page, "a page holds at most `limit` events");
            let Some(last) = batch.last() else { break };
            assert!(batch[0].position > cursor, "a page starts after its cursor");
            cursor = last.position;
            seen.extend(batch.iter().map(|e| e.event_id));
        }
        assert_eq!(seen, written, "pages of {page}: every event once, in order");
    }
    let log = log_after(&store, start).await;
    assert_strictly_increasing(&log);
    let from_tenth = store.read_log(log[9].position, 5).await.unwrap();
    let ids: Vec<_> = from_tenth.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, written[10..15].to_vec(), "reading after a position starts right after it");
    assert!(store.read_log(log.last().unwrap().position, 10).await.unwrap().is_empty());
}

/// Events of each stream appear in the log in stream order, even with concurrent writers.
pub async fn per_stream_order_in_log<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    let start = head(&*store).await;
    let streams: Arc<Vec<_>> = Arc::new((0..4).map(|_| stream("order")).collect());
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (store, streams) = (store.clone(), streams.clone());
            tokio::spawn(async move {
                for i in 0..20u64 {
                    let s = &streams[((w + i) % 4) as usize];
                    append(&*store, s, ExpectedVersion::Any, events(w * 1000 + i * 10, 1 + i % 3)).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer finished");
    }
    let log = log_after(&*store, start).await;
    assert_strictly_increasing(&log);
    let ids: HashSet<_> = log.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), log.len(), "no event twice in the log");
    let mut next: HashMap<_, u64> = HashMap::new();
    for e in &log {
        let expected = next.entry(e.stream_id.clone()).or_insert(1);
        assert_eq!(e.stream_version.0, *expected, "stream {} out of order in the log", e.stream_id);
        *expected += 1;
    }
    for s in streams.iter() {
        let version = store.stream_version(s).await.unwrap();
        assert_eq!(next.get(s).copied().unwrap_or(1) - 1, version.0, "every event of {s} is in the log");
    }
}

/// `stream_version` counts a stream's events at once; `log_head` is the last appended
/// position once the log shows it.
pub async fn stream_version_and_log_head<S: EventStore>(store: S) {
    assert_eq!(store.log_head().await.unwrap(), None, "a fresh store has an empty log");
    let (a, b) = (stream("head"), stream("head"));
    assert_eq!(store.stream_version(&a).await.unwrap(), StreamVersion::EMPTY);
    let first = append(&store, &a, ExpectedVersion::NoStream, events(1, 3)).await;
    assert_eq!(store.stream_version(&a).await.unwrap(), StreamVersion(3));
    assert_eq!(store.log_head().await.unwrap(), first.last_position);
    let second = append(&store, &b, ExpectedVersion::NoStream, events(4, 2)).await;
    assert_eq!(store.log_head().await.unwrap(), second.last_position);
    assert!(second.last_position > first.last_position);
    assert_eq!(store.stream_version(&a).await.unwrap(), StreamVersion(3));
    assert_eq!(store.stream_version(&b).await.unwrap(), StreamVersion(2));
    let log = log_after(&store, tidemark::LogPosition::START).await;
    assert_eq!(log.last().map(|e| e.position), second.last_position);
}

/// `identities` returns the identity of every requested stream version the store holds,
/// equal to what `read_stream` gives, and nothing for versions or streams it does not hold.
pub async fn identities_of_stored_versions<S: EventStore>(store: S) {
    let (s, other, missing) = (stream("ids"), stream("ids"), stream("ids"));
    append(&store, &s, ExpectedVersion::NoStream, events(1, 3)).await;
    append(&store, &other, ExpectedVersion::NoStream, vec![event(9)]).await;
    let at = [
        (s.clone(), StreamVersion(1)),
        (s.clone(), StreamVersion(3)),
        (s.clone(), StreamVersion(4)),
        (other.clone(), StreamVersion(1)),
        (missing, StreamVersion(1)),
        (s.clone(), StreamVersion(0)),
    ];
    let mut found = store.identities(&at).await.unwrap();
    found.sort_by(|a, b| (&a.stream_id, a.stream_version).cmp(&(&b.stream_id, b.stream_version)));
    let mut expected = Vec::new();
    for (id, version) in [(&s, 1), (&s, 3), (&other, 1)] {
        let event = store.read_stream(id, StreamVersion(version), 1).await.unwrap().remove(0);
        expected.push(tidemark::EventIdentity::of(&event));
    }
    expected.sort_by(|a, b| (&a.stream_id, a.stream_version).cmp(&(&b.stream_id, b.stream_version)));
    assert_eq!(found, expected);
    assert!(store.identities(&[]).await.unwrap().is_empty());
}

/// `verify_events` confirms genuine events by returning nothing for them, and returns
/// each other claim once, with what the store holds at its stream version: a different
/// id, type, schema version or position, a version or stream the store does not hold, and
/// numbers no store can hold.
pub async fn verify_events_returns_only_mismatches<S: EventStore>(store: S) {
    let (s, missing) = (stream("verify"), stream("verify"));
    append(&store, &s, ExpectedVersion::NoStream, events(1, 3)).await;
    let genuine = store.read_stream(&s, StreamVersion(1), 3).await.unwrap();
    let refs: Vec<&tidemark::RecordedEvent> = genuine.iter().collect();
    assert!(store.verify_events(&refs).await.unwrap().is_empty(), "the store's own events match");
    assert!(store.verify_events(&[]).await.unwrap().is_empty());

    let second = &genuine[1];
    let altered = |change: &dyn Fn(&mut tidemark::RecordedEvent)| {
        let mut event = second.clone();
        change(&mut event);
        event
    };
    let claims = [
        altered(&|e| e.event_id = EventId::new()),
        altered(&|_| {}),
        altered(&|e| e.event_type = "SomethingElse".to_owned()),
        altered(&|e| e.schema_version += 1),
        altered(&|e| e.position.sequence += 1),
        altered(&|e| e.position.transaction_id += 1),
        altered(&|e| e.stream_version = StreamVersion(4)),
        altered(&|e| e.stream_id = missing.clone()),
        altered(&|e| e.schema_version = u32::MAX),
        altered(&|e| e.position.sequence = u64::MAX),
        altered(&|e| e.stream_version = StreamVersion(u64::MAX)),
    ];
    let refs: Vec<&tidemark::RecordedEvent> = claims.iter().collect();
    let mut found = store.verify_events(&refs).await.unwrap();
    found.sort_by_key(|m| m.index);
    let stored = Some(tidemark::EventIdentity::of(second));
    let expected: Vec<tidemark::Mismatch> = [
        (0, stored.clone()),
        (2, stored.clone()),
        (3, stored.clone()),
        (4, stored.clone()),
        (5, stored.clone()),
        (6, None),
        (7, None),
        (8, stored.clone()),
        (9, stored),
        (10, None),
    ]
    .into_iter()
    .map(|(index, stored)| tidemark::Mismatch::new(index, stored))
    .collect();
    assert_eq!(found, expected);
}

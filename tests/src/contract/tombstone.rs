//! Deleting streams: a tombstone ends a stream, and nothing is ever appended after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::{
    AppendRequest, CommandId, Error, EventStore, ExpectedVersion, NewEvent, Result, StreamId, StreamVersion,
    TOMBSTONE_EVENT_TYPE,
};
use tokio::sync::Barrier;

use super::fixture::*;

/// Asserts that an append was refused because its stream is deleted, at this version.
#[track_caller]
fn assert_deleted<T: std::fmt::Debug>(result: Result<T>, stream: &StreamId, version: u64) {
    match result {
        Err(Error::StreamDeleted { stream: s, version: v }) => {
            assert_eq!(&s, stream, "the error names the stream");
            assert_eq!(v, StreamVersion(version), "the error carries the tombstone's version");
        }
        other => panic!("expected {stream} to be deleted at version {version}, got {other:?}"),
    }
}

/// A tombstone is appended like an event (at the next version, under the expected
/// version's check); afterwards every kind of append and a second tombstone fail with
/// `StreamDeleted` and write nothing, not even their command id; reads still return the
/// stream, the tombstone last. A tombstone cannot share an append with other events.
pub async fn tombstone_ends_stream<S: EventStore>(store: S) {
    let s = stream("tomb");
    append(&store, &s, ExpectedVersion::NoStream, events(1, 2)).await;
    assert_conflict(
        store.tombstone(&s, ExpectedVersion::Exact(StreamVersion(1))).await,
        &s,
        ExpectedVersion::Exact(StreamVersion(1)),
        2,
    );
    let outcome =
        store.tombstone(&s, ExpectedVersion::Exact(StreamVersion(2))).await.expect("the tombstone is written");
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(2), StreamVersion(3)));
    settle(&store, outcome.last_position).await;
    let log_head = head(&store).await;

    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::StreamExists,
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(StreamVersion::EMPTY),
        ExpectedVersion::Exact(StreamVersion(2)),
        ExpectedVersion::Exact(StreamVersion(3)),
        ExpectedVersion::Exact(StreamVersion(4)),
    ] {
        assert_deleted(try_append(&store, &s, expected, vec![event(9)]).await, &s, 3);
        let command = CommandId::new();
        let request = AppendRequest::new(s.clone(), expected, events(10, 2)).with_command_id(command);
        assert_deleted(store.append(request).await, &s, 3);
        assert_eq!(store.command_outcome(command).await.unwrap(), None, "a refused command is not recorded");
    }
    assert_deleted(store.tombstone(&s, ExpectedVersion::Any).await, &s, 3);
    assert_unchanged(&store, &s, 3, log_head).await;

    let stored = whole_stream(&store, &s).await;
    assert_eq!(stored.iter().map(|e| e.is_tombstone()).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(stored[2].event_type, TOMBSTONE_EVENT_TYPE);

    // A stream never written can be tombstoned: its id is then never used.
    let unused = stream("tomb_unused");
    let outcome = store.tombstone(&unused, ExpectedVersion::NoStream).await.expect("an unused id is tombstoned");
    assert_eq!(outcome.version, StreamVersion(1));
    assert_deleted(try_append(&store, &unused, ExpectedVersion::NoStream, vec![event(1)]).await, &unused, 1);

    // The reserved type is refused beside other events, and twice in one append. The log
    // head is read once that tombstone is readable: a transaction of another test can
    // hold the readable head back behind it for a while.
    settle(&store, outcome.last_position).await;
    let fresh = stream("tomb_mixed");
    let log_head = head(&store).await;
    for batch in [vec![event(1), NewEvent::tombstone()], vec![NewEvent::tombstone(), NewEvent::tombstone()]] {
        let result = try_append(&store, &fresh, ExpectedVersion::Any, batch).await;
        assert!(
            matches!(result, Err(Error::InvalidEvent { ref event_type, .. }) if event_type == TOMBSTONE_EVENT_TYPE),
            "got {result:?}"
        );
    }
    assert_unchanged(&store, &fresh, 0, log_head).await;
}

/// How one writer of [`tombstone_races_appends`] appends.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Reads the version, appends expecting exactly it.
    Exact,
    /// Appends expecting any version.
    Any,
    /// Reads the version, appends two events expecting exactly it, under a command id.
    Command,
}

/// Writers append to a few streams as fast as they can (exact versions, any version,
/// with command ids) while one task per stream tombstones it once it holds a few events.
/// Whatever order the store settles on, the tombstone is each stream's last event and
/// its only one, every append the store accepted sits before it, and every writer ends
/// with `StreamDeleted`.
pub async fn tombstone_races_appends<S: EventStore + 'static>(store: S) {
    const STREAMS: usize = 4;
    const WRITERS_PER_STREAM: usize = 6;
    let store = Arc::new(store);
    let ids: Arc<Vec<StreamId>> = Arc::new((0..STREAMS).map(|_| stream("tomb_race")).collect());
    let barrier = Arc::new(Barrier::new(STREAMS * (WRITERS_PER_STREAM + 1)));
    let mut writers = Vec::new();
    for (n, s) in ids.iter().enumerate() {
        for w in 0..WRITERS_PER_STREAM {
            let mode = [Mode::Exact, Mode::Any, Mode::Command][w % 3];
            let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
            writers.push(tokio::spawn(async move {
                barrier.wait().await;
                write_until_deleted(&*store, &s, mode, (n * 100 + w) as u64).await
            }));
        }
    }
    let tombstoners: Vec<_> = ids
        .iter()
        .map(|s| {
            let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                tombstone_after(&*store, &s, 5).await
            })
        })
        .collect();
    let mut accepted: Vec<(StreamId, StreamVersion, u64)> = Vec::new();
    for writer in writers {
        accepted.extend(writer.await.expect("a writer finished"));
    }
    for (s, tombstoner) in ids.iter().zip(tombstoners) {
        let at = tombstoner.await.expect("a tombstoner finished");
        let stored = whole_stream(&*store, s).await;
        let versions: Vec<u64> = stored.iter().map(|e| e.stream_version.0).collect();
        assert_eq!(versions, (1..=at.0).collect::<Vec<_>>(), "{s} holds 1..n and nothing after its tombstone");
        assert_eq!(stored.iter().filter(|e| e.is_tombstone()).count(), 1, "{s} has one tombstone");
        assert!(stored.last().is_some_and(|e| e.is_tombstone()), "the tombstone of {s} is its last event");
        let mine: Vec<_> = accepted.iter().filter(|(a, _, _)| a == s).collect();
        assert!(mine.iter().all(|(_, v, _)| *v < at), "every accepted append of {s} is before its tombstone");
        let written = stored.iter().filter(|e| !e.is_tombstone()).count() as u64;
        let counted: u64 = mine.iter().map(|(_, _, n)| n).sum();
        assert_eq!(written, counted, "{s} holds exactly the events of the accepted appends");
    }
}

/// Appends until the stream is deleted; returns the version each accepted append ended
/// at and how many events it wrote.
async fn write_until_deleted<S: EventStore>(
    store: &S,
    s: &StreamId,
    mode: Mode,
    writer: u64,
) -> Vec<(StreamId, StreamVersion, u64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut accepted = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "{s} was not deleted within 60 s");
        let request = match mode {
            Mode::Any => AppendRequest::new(s.clone(), ExpectedVersion::Any, vec![event(writer)]),
            Mode::Exact | Mode::Command => {
                let version = store.stream_version(s).await.expect("the version reads");
                let request = AppendRequest::new(
                    s.clone(),
                    ExpectedVersion::Exact(version),
                    events(writer, 1 + matches!(mode, Mode::Command) as u64),
                );
                match mode {
                    Mode::Command => request.with_command_id(CommandId::new()),
                    _ => request,
                }
            }
        };
        match store.append(request).await {
            Ok(outcome) => accepted.push((s.clone(), outcome.version, outcome.appended())),
            Err(Error::Conflict { .. }) => {}
            Err(Error::StreamDeleted { stream, .. }) => {
                assert_eq!(&stream, s);
                return accepted;
            }
            Err(other) => panic!("an append to {s} failed: {other:?}"),
        }
        // An in-memory store never suspends: let the tombstoners run.
        tokio::task::yield_now().await;
    }
}

/// Waits (bounded) until the stream holds `after` events, then tombstones it whatever its
/// version; returns the tombstone's version.
async fn tombstone_after<S: EventStore>(store: &S, s: &StreamId, after: u64) -> StreamVersion {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{s} did not reach {after} events or take its tombstone within 60 s");
        if store.stream_version(s).await.expect("the version reads").0 < after {
            tokio::task::yield_now().await;
            continue;
        }
        match store.tombstone(s, ExpectedVersion::Any).await {
            Ok(outcome) => return outcome.version,
            Err(Error::Conflict { .. }) => {}
            Err(other) => panic!("the tombstone of {s} failed: {other:?}"),
        }
    }
}

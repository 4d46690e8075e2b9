//! The optimistic-concurrency race: many writers, exact expected versions, retries.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use tidemark::{Error, EventStore, ExpectedVersion, LogPosition, NewEvent, StreamVersion};
use tokio::sync::Barrier;

use super::fixture::*;

/// What one writer task did.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    conflicts: u64,
    last_position: Option<LogPosition>,
}

/// `tasks` writers each carry out `commands` commands on `streams` streams: read the
/// stream's version, append one event expecting exactly that version, and on a
/// conflict read again and retry. Afterwards the stream versions add up to the number
/// of accepted appends, and every stream holds versions 1..n, each once, with every
/// command's event exactly once.
pub async fn exact_version_race<S: EventStore + 'static>(store: S, tasks: usize, commands: usize, streams: usize) {
    assert!(tasks > 0 && streams > 0);
    let store = Arc::new(store);
    let start = head(&*store).await;
    let ids: Arc<Vec<_>> = Arc::new((0..streams).map(|_| stream("race")).collect());
    let barrier = Arc::new(Barrier::new(tasks));
    let writers: Vec<_> = (0..tasks)
        .map(|task| {
            let (store, ids, barrier) = (store.clone(), ids.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tally = Tally::default();
                for command in 0..commands {
                    let s = &ids[(task + command) % ids.len()];
                    loop {
                        let version = store.stream_version(s).await.expect("version reads");
                        let event = NewEvent::new(EVENT_TYPE, 1, raw(&json!({ "task": task, "command": command })));
                        match try_append(&*store, s, ExpectedVersion::Exact(version), vec![event]).await {
                            Ok(outcome) => {
                                assert_eq!((outcome.previous_version, outcome.version), (version, version.next()));
                                tally.accepted += 1;
                                tally.last_position = tally.last_position.max(outcome.last_position);
                                break;
                            }
                            Err(Error::Conflict { stream, expected, actual }) => {
                                assert_eq!((&stream, expected), (s, ExpectedVersion::Exact(version)));
                                assert_ne!(actual, version, "a conflict means another version");
                                tally.conflicts += 1;
                            }
                            Err(other) => panic!("append failed: {other:?}"),
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let (mut accepted, mut last) = (0, None);
    for writer in writers {
        let tally = writer.await.expect("writer finished");
        accepted += tally.accepted;
        last = last.max(tally.last_position);
    }
    settle(&*store, last).await;
    assert_eq!(accepted, (tasks * commands) as u64, "every command was accepted once");

    let mut total = 0;
    let mut seen = HashSet::new();
    for s in ids.iter() {
        let version = store.stream_version(s).await.unwrap();
        let events = whole_stream(&*store, s).await;
        let versions: Vec<u64> = events.iter().map(|e| e.stream_version.0).collect();
        assert_eq!(versions, (1..=version.0).collect::<Vec<_>>(), "{s} holds 1..n, each once");
        for e in &events {
            let p = payload(e);
            assert!(seen.insert((p["task"].as_u64(), p["command"].as_u64())), "a command stored twice: {p}");
        }
        total += version.0;
    }
    assert_eq!(total, accepted, "stream versions add up to the accepted appends");
    assert_eq!(seen.len() as u64, accepted);
    let log = log_after(&*store, start).await;
    assert_eq!(log.len() as u64, accepted, "the log holds every accepted event once");
    assert_strictly_increasing(&log);
    assert!(log.iter().all(|e| e.stream_version > StreamVersion::EMPTY));
}

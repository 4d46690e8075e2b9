//! Command ids: an append recorded under a command id happens once.

use std::sync::Arc;

use tidemark::{
    AppendOutcome, AppendRequest, CommandId, EventStore, ExpectedVersion, NewEvent, StreamId, StreamVersion,
};
use tokio::sync::Barrier;

use super::fixture::*;

fn with_command(stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>, id: CommandId) -> AppendRequest {
    AppendRequest::new(stream.clone(), expected, events).with_command_id(id)
}

fn as_original(outcome: &AppendOutcome) -> AppendOutcome {
    AppendOutcome { duplicate: false, ..outcome.clone() }
}

/// A second append with the same command id returns the first outcome and writes
/// nothing, whatever its stream, events and expected version.
pub async fn duplicate_command_id<S: EventStore>(store: S) {
    let (a, b) = (stream("dup"), stream("dup"));
    let id = CommandId::new();
    assert_eq!(store.command_outcome(id).await.unwrap(), None);
    let first = store.append(with_command(&a, ExpectedVersion::NoStream, events(1, 2), id)).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!((first.command_id, first.version), (Some(id), StreamVersion(2)));
    settle(&store, first.last_position).await;
    let log_head = head(&store).await;

    // Would conflict (NoStream) if it were not recognised as a duplicate.
    let again_batch = events(3, 3);
    let again = store.append(with_command(&a, ExpectedVersion::NoStream, again_batch.clone(), id)).await;
    let again = again.expect("a duplicate is not a conflict");
    assert!(again.duplicate);
    assert_eq!(as_original(&again), first);
    // Another stream, same command id: still the first outcome, nothing written.
    let elsewhere = store.append(with_command(&b, ExpectedVersion::Any, events(6, 1), id)).await.unwrap();
    assert!(elsewhere.duplicate);
    assert_eq!(as_original(&elsewhere), first);
    assert_unchanged(&store, &a, 2, log_head).await;
    assert_unchanged(&store, &b, 0, log_head).await;

    let recorded = store.command_outcome(id).await.unwrap().expect("the outcome is recorded");
    assert_eq!(as_original(&recorded), first);
    // The duplicate's events were not stored: their ids are still free.
    append(&store, &a, ExpectedVersion::Exact(StreamVersion(2)), again_batch).await;
}

async fn race_one_command_id<S: EventStore + 'static>(store: S, expected: ExpectedVersion) {
    const RACERS: usize = 20;
    let store = Arc::new(store);
    let start = head(&*store).await;
    let (s, id) = (stream("race"), CommandId::new());
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS as u64)
        .map(|i| {
            let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
            tokio::spawn(async move {
                let batch = events(i * 10, 2);
                let ids: Vec<_> = batch.iter().map(|e| e.event_id).collect();
                barrier.wait().await;
                (ids, store.append(with_command(&s, expected, batch, id)).await)
            })
        })
        .collect();
    let mut results = Vec::new();
    for racer in racers {
        let (ids, result) = racer.await.unwrap();
        let outcome = result.unwrap_or_else(|e| panic!("a racing duplicate got {e:?}, not the first outcome"));
        results.push((ids, outcome));
    }
    let winners: Vec<_> = results.iter().filter(|(_, o)| !o.duplicate).collect();
    assert_eq!(winners.len(), 1, "exactly one append is not a duplicate");
    let (winner_ids, original) = winners[0];
    for (_, outcome) in &results {
        assert_eq!(&as_original(outcome), original, "every racer sees the same outcome");
    }
    assert_eq!((original.previous_version, original.version), (StreamVersion(0), StreamVersion(2)));
    settle(&*store, original.last_position).await;
    let stored: Vec<_> = whole_stream(&*store, &s).await.iter().map(|e| e.event_id).collect();
    assert_eq!(&stored, winner_ids, "the stream holds the winner's events only");
    assert_eq!(log_after(&*store, start).await.len(), 2, "one set of events in the log");
}

/// 20 concurrent appends with one command id and `ExpectedVersion::Any`: one is
/// carried out, all return its outcome.
pub async fn racing_duplicate_command_ids<S: EventStore + 'static>(store: S) {
    race_one_command_id(store, ExpectedVersion::Any).await;
}

/// The same race with `NoStream`: the losers see the winner's outcome, not a conflict
/// (the command was carried out, so it is a duplicate).
pub async fn racing_duplicate_command_ids_expecting_no_stream<S: EventStore + 'static>(store: S) {
    race_one_command_id(store, ExpectedVersion::NoStream).await;
}

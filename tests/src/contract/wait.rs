//! Waiting for the log to move.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::{EventStore, ExpectedVersion, LogPosition};

use super::fixture::*;

/// Far longer than any wake-up takes: a waiter that needs it was not woken.
const LONG: Duration = Duration::from_secs(30);

/// Waiters parked on the log head wake when another task appends.
pub async fn wait_for_log_wakes_on_append<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    let after = head(&*store).await;
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let woken = store.wait_for_log(after, LONG).await.expect("waiting works");
                (woken, started.elapsed())
            })
        })
        .collect();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            // Not a condition: it only makes it likely that the waiters are parked
            // before the append, so that the wake-up path (not the first check) runs.
            tokio::time::sleep(Duration::from_millis(100)).await;
            append(&*store, &stream("wake"), ExpectedVersion::NoStream, events(1, 1)).await
        })
    };
    let appended = appender.await.unwrap();
    for waiter in waiters {
        let (woken, elapsed) = waiter.await.unwrap();
        assert!(woken, "the waiter was woken by the append");
        assert!(elapsed < LONG / 3, "woken after {elapsed:?}, not by the timeout");
    }
    let new = store.read_log(after, 10).await.unwrap();
    assert_eq!(new.last().map(|e| e.position), appended.last_position);
}

/// How many spurious wake-ups in a row a waiter may see before its timeout.
const MAX_SPURIOUS: u32 = 3;

/// Waits on `after` until a wait times out; returns how many waits before it returned
/// `true` although nothing was appended (spurious wake-ups).
async fn waits_until_timeout<S: EventStore>(store: &S, after: LogPosition) -> u32 {
    let timeout = Duration::from_millis(300);
    let mut spurious = 0;
    loop {
        let started = Instant::now();
        if !store.wait_for_log(after, timeout).await.unwrap() {
            let elapsed = started.elapsed();
            assert!(elapsed >= timeout - Duration::from_millis(50), "timed out early, after {elapsed:?}");
            return spurious;
        }
        assert!(store.read_log(after, 1).await.unwrap().is_empty(), "nothing was appended");
        spurious += 1;
        assert!(spurious <= MAX_SPURIOUS, "{spurious} wake-ups in a row without new events");
    }
}

/// With nothing appended, waiting ends with `false` when the timeout passes. The trait
/// allows spurious wake-ups, but not an endless stream of them: a reader that waits
/// again after each one reaches the timeout within a few waits.
pub async fn wait_for_log_times_out<S: EventStore>(store: S) {
    waits_until_timeout(&store, LogPosition::START).await;
    append(&store, &stream("timeout"), ExpectedVersion::NoStream, events(1, 2)).await;
    let after = head(&store).await;
    waits_until_timeout(&store, after).await;
}

/// Stricter than the trait requires, for stores that promise it: a wait with nothing
/// appended, on an empty log or after the store's own appends, returns `false` at the
/// timeout, never early with `true`.
pub async fn wait_for_log_without_spurious_wakeups<S: EventStore>(store: S) {
    assert_eq!(waits_until_timeout(&store, LogPosition::START).await, 0, "empty log");
    append(&store, &stream("timeout"), ExpectedVersion::NoStream, events(1, 2)).await;
    let after = head(&store).await;
    assert_eq!(waits_until_timeout(&store, after).await, 0, "after an append");
}

/// Events already readable after the cursor end the wait at once.
pub async fn wait_for_log_returns_when_behind<S: EventStore>(store: S) {
    let before = head(&store).await;
    append(&store, &stream("behind"), ExpectedVersion::NoStream, events(1, 2)).await;
    let started = Instant::now();
    assert!(store.wait_for_log(before, LONG).await.unwrap());
    assert!(started.elapsed() < LONG / 3, "returned after {:?}", started.elapsed());
}

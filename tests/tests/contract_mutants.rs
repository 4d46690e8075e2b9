//! The contract suite catches broken stores: each test runs one case against the
//! in-memory store with one rule deliberately broken, and expects the case to fail.

use std::time::Duration;

use tidemark::{
    AppendOutcome, AppendRequest, CommandId, EventStore, ExpectedVersion, InMemoryEventStore, LogPosition, Mismatch,
    RecordedEvent, Result, Snapshot, StreamId, StreamVersion,
};
use tidemark_tests::contract;

/// The rule a [`Mutant`] breaks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    /// None: the wrapper delegates faithfully.
    None,
    /// Appends as if every request expected `Any`.
    IgnoreExpectedVersion,
    /// Writes the events of a conflicting append anyway, then reports the conflict.
    WriteOnConflict,
    /// Drops command ids: every append is carried out.
    ForgetCommandIds,
    /// Checks for a recorded command, then appends: two racers both get through.
    CheckThenAppend,
    /// Never wakes a waiter: it sleeps out the timeout.
    NeverWake,
    /// Loses the first event of every log page but the first.
    SkipOnPaging,
    /// Keeps the first snapshot forever.
    KeepFirstSnapshot,
    /// Confirms delivered events by stream version and id alone.
    VerifyIdsOnly,
}

#[derive(Debug)]
struct Mutant {
    inner: InMemoryEventStore,
    bug: Bug,
}

fn mutant(bug: Bug) -> Mutant {
    Mutant { inner: InMemoryEventStore::new(), bug }
}

impl EventStore for Mutant {
    async fn append(&self, mut request: AppendRequest) -> Result<AppendOutcome> {
        match self.bug {
            Bug::IgnoreExpectedVersion => request.expected = ExpectedVersion::Any,
            Bug::ForgetCommandIds => request.command_id = None,
            Bug::WriteOnConflict => {
                let result = self.inner.append(request.clone()).await;
                if result.is_err() {
                    request.expected = ExpectedVersion::Any;
                    let _ = self.inner.append(request).await;
                }
                return result;
            }
            Bug::CheckThenAppend => {
                if let Some(id) = request.command_id.take() {
                    if let Some(outcome) = self.inner.command_outcome(id).await? {
                        return Ok(outcome);
                    }
                    tokio::task::yield_now().await;
                    let outcome = self.inner.append(request).await?;
                    return Ok(AppendOutcome { command_id: Some(id), ..outcome });
                }
            }
            _ => {}
        }
        self.inner.append(request).await
    }

    async fn read_stream(&self, id: &StreamId, from: StreamVersion, limit: usize) -> Result<Vec<RecordedEvent>> {
        self.inner.read_stream(id, from, limit).await
    }

    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>> {
        let mut page = self.inner.read_log(after, limit).await?;
        if self.bug == Bug::SkipOnPaging && after != LogPosition::START && page.len() > 1 {
            page.remove(0);
        }
        Ok(page)
    }

    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool> {
        if self.bug == Bug::NeverWake {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        self.inner.wait_for_log(after, timeout).await
    }

    async fn verify_events(&self, events: &[&RecordedEvent]) -> Result<Vec<Mismatch>> {
        let mismatches = self.inner.verify_events(events).await?;
        if self.bug != Bug::VerifyIdsOnly {
            return Ok(mismatches);
        }
        let same_id = |m: &Mismatch| m.stored.as_ref().is_some_and(|s| s.event_id == events[m.index].event_id);
        Ok(mismatches.into_iter().filter(|m| !same_id(m)).collect())
    }

    async fn stream_version(&self, id: &StreamId) -> Result<StreamVersion> {
        self.inner.stream_version(id).await
    }

    async fn log_head(&self) -> Result<Option<LogPosition>> {
        self.inner.log_head().await
    }

    async fn command_outcome(&self, id: CommandId) -> Result<Option<AppendOutcome>> {
        self.inner.command_outcome(id).await
    }

    async fn load_snapshot(&self, id: &StreamId) -> Result<Option<Snapshot>> {
        self.inner.load_snapshot(id).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let keep = self.bug == Bug::KeepFirstSnapshot && self.inner.load_snapshot(&snapshot.stream_id).await?.is_some();
        if keep {
            return Ok(());
        }
        self.inner.save_snapshot(snapshot).await
    }
}

#[tokio::test]
async fn the_unbroken_wrapper_passes() {
    // Without a bug the wrapper passes the same cases, so the failures below come
    // from the bugs.
    contract::expected_exact(mutant(Bug::None)).await;
    contract::conflict_writes_nothing(mutant(Bug::None)).await;
    contract::duplicate_command_id(mutant(Bug::None)).await;
    contract::read_log_paging(mutant(Bug::None)).await;
    contract::snapshots_save_load_replace(mutant(Bug::None)).await;
    contract::verify_events_returns_only_mismatches(mutant(Bug::None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unbroken_wrapper_passes_the_race() {
    contract::racing_duplicate_command_ids(mutant(Bug::None)).await;
}

#[tokio::test(start_paused = true)]
async fn the_unbroken_wrapper_wakes() {
    contract::wait_for_log_wakes_on_append(mutant(Bug::None)).await;
}

#[tokio::test]
#[should_panic(expected = "expected a conflict")]
async fn ignoring_expected_versions_is_caught() {
    contract::expected_exact(mutant(Bug::IgnoreExpectedVersion)).await;
}

#[tokio::test]
#[should_panic]
async fn writing_on_conflict_is_caught() {
    contract::conflict_writes_nothing(mutant(Bug::WriteOnConflict)).await;
}

#[tokio::test]
#[should_panic]
async fn forgetting_command_ids_is_caught() {
    contract::duplicate_command_id(mutant(Bug::ForgetCommandIds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "exactly one append is not a duplicate")]
async fn check_then_append_is_caught_by_the_race() {
    contract::racing_duplicate_command_ids(mutant(Bug::CheckThenAppend)).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "woken by the append")]
async fn never_waking_is_caught() {
    // The paused clock lets the waiters sleep out the case's 30 s timeout at once.
    contract::wait_for_log_wakes_on_append(mutant(Bug::NeverWake)).await;
}

#[tokio::test]
#[should_panic(expected = "every event once, in order")]
async fn skipping_events_on_paging_is_caught() {
    contract::read_log_paging(mutant(Bug::SkipOnPaging)).await;
}

#[tokio::test]
#[should_panic]
async fn keeping_stale_snapshots_is_caught() {
    contract::snapshots_save_load_replace(mutant(Bug::KeepFirstSnapshot)).await;
}

#[tokio::test]
#[should_panic(expected = "assertion `left == right` failed")]
async fn verifying_by_id_alone_is_caught() {
    contract::verify_events_returns_only_mismatches(mutant(Bug::VerifyIdsOnly)).await;
}

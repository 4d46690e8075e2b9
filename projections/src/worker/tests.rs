//! The batch state machine on the in-memory read models.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tidemark::{
    AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, InMemoryEventStore, LogPosition, NewEvent,
    StreamId,
};

use super::{Batch, Worker};
use crate::admin::ReadModelsAdmin;
use crate::documents::DocumentTx;
use crate::error::{ApplyError, ProjectionError};
use crate::feed::Incoming;
use crate::memory::MemoryReadModels;
use crate::projection::Projection;
use crate::read_models::ReadModels;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counted {
    n: i64,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum CountEvent {
        Counted(Counted) = ("Counted", 1),
    }
}

/// Counts the events of each stream in the `count` collection. Unless `undoable`, never
/// applied before its check, so every batch passes through each state.
struct Count {
    codec: EventCodec<CountEvent>,
    undoable: bool,
}

impl<R: ReadModels> Projection<R> for Count
where
    R::Tx: DocumentTx,
{
    type Event = CountEvent;

    fn name(&self) -> &str {
        "count"
    }

    fn codec(&self) -> &EventCodec<CountEvent> {
        &self.codec
    }

    fn undoable(&self) -> bool {
        self.undoable
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<CountEvent>) -> Result<(), ApplyError> {
        let key = event.stream_id.as_str();
        let seen: u64 = tx.get_as("count", key).await?.unwrap_or_default();
        tx.put_as("count", key, &(seen + 1)).await
    }
}

type CountWorker = Worker<Count, MemoryReadModels, InMemoryEventStore>;

async fn worker_with_events(count: usize) -> (CountWorker, Vec<Incoming>) {
    worker_of(count, false).await
}

async fn worker_of(count: usize, undoable: bool) -> (CountWorker, Vec<Incoming>) {
    let store = InMemoryEventStore::new();
    let events = (0..count)
        .map(|n| NewEvent::new("Counted", 1, RawValue::from_string(format!(r#"{{"n":{n}}}"#)).expect("json")))
        .collect();
    let stream = StreamId::new("counter-1").expect("id");
    store.append(AppendRequest::new(stream, ExpectedVersion::NoStream, events)).await.expect("append");
    let log = store.read_log(LogPosition::START, 100).await.expect("log");
    let worker = Worker {
        projection: Arc::new(Count { codec: EventCodec::without_upcasters().expect("codec"), undoable }),
        read_models: MemoryReadModels::new(),
        store: Arc::new(store),
        name: "count".to_owned(),
        careful: AtomicU32::new(0),
    };
    worker.ensure_set_up().await.expect("set up");
    (worker, log.into_iter().map(Incoming::Trusted).collect())
}

async fn events_taken(worker: &CountWorker) -> u64 {
    let partitions = worker.read_models.partitions(&worker.name).await.expect("partitions");
    partitions.iter().map(|(_, state)| state.events).sum()
}

#[tokio::test]
async fn a_batch_goes_from_idle_to_applied_to_committed_once() {
    let (worker, messages) = worker_with_events(3).await;
    let mut batch = Batch::idle(0);
    worker.apply(&mut batch, &messages, None).await.expect("applied");
    let again = worker.apply(&mut batch, &messages, None).await;
    assert!(matches!(again, Err(ProjectionError::Config(_))), "{again:?}");
    let report = worker.commit(&mut batch).await.expect("committed");
    assert_eq!(report.applied, 3);
    assert_eq!(events_taken(&worker).await, 3);
    assert_eq!(worker.commit(&mut batch).await.expect("committed already"), report);
}

#[tokio::test]
async fn a_begun_batch_committed_unused_records_nothing_and_frees_its_partition() {
    let (worker, messages) = worker_with_events(2).await;
    let mut unused = worker.begin(0).await.expect("begun");
    worker.commit(&mut unused).await.expect("ended");
    assert_eq!(events_taken(&worker).await, 0);
    // The partition's lock went with the transaction: the next batch takes it.
    let next = worker.apply_and_commit(0, &messages, None);
    let report = tokio::time::timeout(Duration::from_secs(30), next).await.expect("lock freed").expect("applied");
    assert_eq!(report.applied, 2);
}

#[tokio::test]
async fn a_batch_begun_early_applies_in_its_own_transaction() {
    let (worker, messages) = worker_with_events(2).await;
    let mut batch = worker.begin(0).await.expect("begun");
    worker.apply(&mut batch, &messages, None).await.expect("applied");
    assert_eq!(events_taken(&worker).await, 0, "nothing shows before the commit");
    worker.commit(&mut batch).await.expect("committed");
    assert_eq!(events_taken(&worker).await, 2);
}

#[tokio::test]
async fn a_batch_within_a_callers_transaction_gives_it_back_uncommitted() {
    let (worker, messages) = worker_with_events(2).await;
    let tx = worker.read_models.begin().await.expect("begin");
    let mut batch = Batch::within(0, tx);
    worker.apply(&mut batch, &messages, None).await.expect("applied");
    let tx = batch.into_tx().expect("the caller's transaction");
    assert_eq!(events_taken(&worker).await, 0);
    worker.read_models.commit(tx).await.expect("committed");
    assert_eq!(events_taken(&worker).await, 2);
}

#[tokio::test]
async fn a_batch_applied_before_its_check_commits_as_it_is_checked() {
    let (worker, messages) = worker_of(2, true).await;
    let mut batch = Batch::idle(0);
    worker.apply(&mut batch, &messages, None).await.expect("applied");
    assert_eq!(events_taken(&worker).await, 2, "the check committed it");
    assert_eq!(worker.commit(&mut batch).await.expect("committed").applied, 2);
    // A redelivery is refused by the check, undone, and taken again the careful way.
    let mut again = Batch::idle(0);
    worker.apply(&mut again, &messages, None).await.expect("applied");
    let report = worker.commit(&mut again).await.expect("committed");
    assert_eq!((report.undone, report.duplicates, report.applied), (1, 2, 0));
    assert_eq!(events_taken(&worker).await, 2);
}

//! Group commit: concurrent appends to different streams share one statement, one
//! transaction and one commit. Each append keeps its own expected-version check and
//! outcome; if the shared statement fails (a race on a version or a command id), every
//! append in it is retried on its own, so no append sees another's failure.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use sqlx::Row;
use tidemark::{AppendOutcome, AppendRequest, BackendError, Error, LogPosition, StreamVersion};
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::append::expected_parts;
use crate::row::{unsigned, Columns};
use crate::store::{PgEventStore, WeakStore};

struct Pending {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendOutcome, Error>>,
}

/// The entry point of appends when group commit is on.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    /// One permit per statement in flight, batches and lone appends alike.
    slots: Arc<Semaphore>,
}

impl GroupCommit {
    /// Starts the batching task; it ends when the store is dropped.
    pub fn start(store: WeakStore, max_batch: usize, in_flight: usize) -> Self {
        let (queue, rx) = mpsc::channel(max_batch.max(1) * in_flight.max(1) * 4);
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        tokio::spawn(batcher(store, rx, max_batch.max(1), slots.clone()));
        Self { queue, slots }
    }

    /// Appends through a shared statement, or at once in the caller's task when no other
    /// append is waiting and a slot is free: an append on an idle store pays no hand-over
    /// to the batching task and back.
    pub async fn submit(&self, store: &PgEventStore, request: AppendRequest) -> Result<AppendOutcome, Error> {
        if self.queue.capacity() == self.queue.max_capacity() {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                let outcome = store.append_alone(request).await;
                drop(slot);
                return outcome;
            }
        }
        let (reply, outcome) = oneshot::channel();
        let stopped = || Error::Backend(BackendError::new("group commit", true, "the store is shutting down"));
        self.queue.send(Pending { request, reply }).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Gathers waiting appends into batches of distinct streams, at most `in_flight` at once.
/// No append waits for a timer: a batch leaves as soon as a slot is free.
async fn batcher(store: WeakStore, mut rx: mpsc::Receiver<Pending>, max_batch: usize, slots: Arc<Semaphore>) {
    let mut carried: VecDeque<Pending> = VecDeque::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let first = match carried.pop_front() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let batch = gather(first, &mut carried, &mut rx, max_batch);
        let Some(store) = store.upgrade() else { return };
        tokio::spawn(async move {
            run(&store, batch).await;
            drop(slot);
        });
    }
}

/// Fills a batch with distinct streams: first the appends carried over from earlier
/// batches (in order), then whatever is waiting. Appends to a stream already in the
/// batch wait for a later one, so per-stream order is kept.
fn gather(
    first: Pending,
    carried: &mut VecDeque<Pending>,
    rx: &mut mpsc::Receiver<Pending>,
    max: usize,
) -> Vec<Pending> {
    let mut streams = HashSet::from([first.request.stream_id.clone()]);
    let mut batch = vec![first];
    let mut later = VecDeque::new();
    let mut offer = |p: Pending, batch: &mut Vec<Pending>, later: &mut VecDeque<Pending>| {
        if batch.len() < max && streams.insert(p.request.stream_id.clone()) {
            batch.push(p);
        } else {
            later.push_back(p);
        }
    };
    for p in carried.drain(..) {
        offer(p, &mut batch, &mut later);
    }
    while batch.len() < max && later.len() < max {
        match rx.try_recv() {
            Ok(p) => offer(p, &mut batch, &mut later),
            Err(_) => break,
        }
    }
    *carried = later;
    batch
}

async fn run(store: &PgEventStore, mut batch: Vec<Pending>) {
    if batch.len() == 1 {
        if let Some(p) = batch.pop() {
            let _ = p.reply.send(store.append_alone(p.request).await);
        }
        return;
    }
    match shared_statement(store, &batch).await {
        Ok(results) => {
            if results.iter().any(|r| matches!(r, Ok(o) if o.last_position.is_some())) {
                store.wake().appended();
            }
            for (p, result) in batch.into_iter().zip(results) {
                let result = match result {
                    Ok(outcome) => Ok(outcome),
                    Err(head) => store.rejected(&p.request, head).await,
                };
                let _ = p.reply.send(result);
            }
        }
        Err(error) => {
            tracing::debug!(%error, size = batch.len(), "group commit failed; appending one by one");
            let alone = batch.into_iter().map(|p| async move {
                let _ = p.reply.send(store.append_alone(p.request).await);
            });
            futures_util::future::join_all(alone).await;
        }
    }
}

/// Column arrays of a whole batch: one row per request, one row per event.
#[derive(Default)]
struct BatchColumns<'a> {
    index: Vec<i32>,
    streams: Vec<&'a str>,
    kinds: Vec<i32>,
    exacts: Vec<i64>,
    commands: Vec<Option<Uuid>>,
    counts: Vec<i32>,
    event_index: Vec<i32>,
    ordinal: Vec<i32>,
    events: Columns<'a>,
}

impl<'a> BatchColumns<'a> {
    fn new(batch: &'a [Pending]) -> Result<Self, Error> {
        let mut c = Self::default();
        for (i, p) in batch.iter().enumerate() {
            let r = &p.request;
            let (kind, exact) = expected_parts(r.expected);
            let i = i32::try_from(i).unwrap_or(i32::MAX);
            c.index.push(i);
            c.streams.push(r.stream_id.as_str());
            c.kinds.push(kind);
            c.exacts.push(exact);
            c.commands.push(r.command_id.map(|id| id.0));
            c.counts.push(i32::try_from(r.events.len()).unwrap_or(i32::MAX));
            for k in 1..=r.events.len() {
                c.event_index.push(i);
                c.ordinal.push(i32::try_from(k).unwrap_or(i32::MAX));
            }
            c.events.extend(&r.events)?;
        }
        Ok(c)
    }
}

/// Runs the batch statement. Per request: the outcome, or the stream's version when the
/// expected version did not hold (nothing of that request was written).
async fn shared_statement(
    store: &PgEventStore,
    batch: &[Pending],
) -> Result<Vec<Result<AppendOutcome, StreamVersion>>, Error> {
    let c = BatchColumns::new(batch)?;
    let e = &c.events;
    let rows = sqlx::query(&store.sql().append_batch)
        .bind(&c.index)
        .bind(&c.streams)
        .bind(&c.kinds)
        .bind(&c.exacts)
        .bind(&c.commands)
        .bind(&c.counts)
        .bind(&c.event_index)
        .bind(&c.ordinal)
        .bind(&e.ids)
        .bind(&e.types)
        .bind(&e.versions)
        .bind(&e.payloads)
        .bind(&e.correlations)
        .bind(&e.causations)
        .bind(&e.extras)
        .fetch_all(store.pool())
        .await
        .map_err(crate::error::backend("group commit"))?;
    let decode = |e| crate::error::backend("decoding a group commit")(e);
    let mut results = Vec::with_capacity(batch.len());
    for (p, row) in batch.iter().zip(&rows) {
        let head = StreamVersion(unsigned(row.try_get(1).map_err(decode)?));
        let Some(base) = row.try_get::<Option<i64>, _>(2).map_err(decode)? else {
            results.push(Err(head));
            continue;
        };
        let tx: Option<i64> = row.try_get(3).map_err(decode)?;
        let pos: Option<i64> = row.try_get(4).map_err(decode)?;
        let previous = StreamVersion(unsigned(base));
        results.push(Ok(AppendOutcome {
            stream_id: p.request.stream_id.clone(),
            command_id: p.request.command_id,
            previous_version: previous,
            version: StreamVersion(previous.0 + p.request.events.len() as u64),
            last_position: tx.zip(pos).map(|(t, q)| LogPosition::new(unsigned(t), unsigned(q))),
            duplicate: false,
        }));
    }
    Ok(results)
}

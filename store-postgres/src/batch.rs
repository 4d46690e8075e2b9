//! Group commit: concurrent appends to different streams share one statement, one
//! transaction and one commit. Each append keeps its own expected-version check and
//! outcome; if the shared statement fails (a race on a version or a command id), every
//! append in it is retried on its own, so no append sees another's failure. If the server
//! goes away instead, every append of the batch gets the error, retryable: its commit may
//! have gone through, and only a caller's retry under its command id can tell.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tidemark::{AppendOutcome, AppendRequest, BackendError, Error, LogPosition, StreamVersion};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use crate::append::expected_parts;
use crate::batch_plain::{is_plain, plain_statement};
use crate::config::PgStoreConfig;
use crate::row::{unsigned, Columns};
use crate::store::{PgEventStore, WeakStore};

pub(crate) struct Pending {
    pub(crate) request: AppendRequest,
    reply: oneshot::Sender<Result<AppendOutcome, Error>>,
}

/// The entry point of appends when group commit is on.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    /// One permit per statement in flight, batches and lone appends alike.
    slots: Arc<Semaphore>,
    /// Events sent to the batching task and not yet taken by it, statements in flight,
    /// and the batching task's wake-ups.
    waiting: Arc<Waiting>,
}

/// What the batching task waits on before it starts a batch beside others in flight.
#[derive(Debug, Default)]
struct Waiting {
    /// Events in the queue, not yet taken by the batching task (below zero for a moment
    /// when it takes an append before `submit` has counted it).
    events: AtomicIsize,
    /// Statements in flight: batches and lone appends.
    running: AtomicUsize,
    /// Signalled when appends are queued and when a statement ends.
    changed: Notify,
}

impl GroupCommit {
    /// Starts the batching task; it ends when the store is dropped.
    pub(crate) fn start(store: WeakStore, config: &PgStoreConfig) -> Self {
        let (max_batch, in_flight) = (config.max_batch.max(1), config.batches_in_flight.max(1));
        let (queue, rx) = mpsc::channel(max_batch * in_flight * 4);
        let slots = Arc::new(Semaphore::new(in_flight));
        let waiting = Arc::new(Waiting::default());
        let limits = Limits { max_batch, overlap_at: config.overlap_events.max(1), overlap_after: config.overlap_wait };
        tokio::spawn(batcher(store, rx, limits, slots.clone(), waiting.clone()));
        Self { queue, slots, waiting }
    }

    /// Appends through a shared statement, or at once in the caller's task when the
    /// store is idle (no statement in flight, no append waiting): an append on an idle
    /// store pays no hand-over to the batching task and back.
    pub(crate) async fn submit(&self, store: &PgEventStore, request: AppendRequest) -> Result<AppendOutcome, Error> {
        let idle =
            self.queue.capacity() == self.queue.max_capacity() && self.waiting.running.load(Ordering::Acquire) == 0;
        if idle {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                // Freed and told when the append ends, also when its caller gives up.
                let _running = Running::start(slot, &self.waiting);
                return store.append_alone(request).await;
            }
        }
        let (reply, outcome) = oneshot::channel();
        let stopped = || Error::Backend(BackendError::new("group commit", true, "the store is shutting down"));
        let events = events_of_request(&request);
        if self.queue.send(Pending { request, reply }).await.is_err() {
            return Err(stopped());
        }
        // Counted once in the queue, so the batching task never counts events it cannot
        // take yet. It may take them first; the count is then below zero for a moment.
        self.waiting.events.fetch_add(events, Ordering::Relaxed);
        self.waiting.changed.notify_one();
        outcome.await.map_err(|_| stopped())?
    }
}

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Most appends per batch.
    max_batch: usize,
    /// Events that must be waiting before a batch starts while another is in flight
    /// (`PgStoreConfig::overlap_events`).
    overlap_at: usize,
    /// How long waiting appends stay behind a statement in flight at most
    /// (`PgStoreConfig::overlap_wait`): one held up by a lock does not hold them back.
    overlap_after: Duration,
}

/// Gathers waiting appends into batches of distinct streams, at most `in_flight` at once.
/// A batch leaves as soon as a slot is free and either nothing else is in flight, enough
/// events are waiting (`Limits::overlap_at`), or the appends have waited
/// `Limits::overlap_after` behind what is in flight.
async fn batcher(
    store: WeakStore,
    mut rx: mpsc::Receiver<Pending>,
    limits: Limits,
    slots: Arc<Semaphore>,
    waiting: Arc<Waiting>,
) {
    let mut carried: VecDeque<Pending> = VecDeque::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let first = match carried.pop_front() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => taken(p, &waiting),
                None => return,
            },
        };
        let until = Instant::now() + limits.overlap_after;
        loop {
            let others_in_flight = waiting.running.load(Ordering::Acquire) > 0;
            let in_queue = usize::try_from(waiting.events.load(Ordering::Relaxed)).unwrap_or(0);
            let queued = in_queue + events_in(&carried) + events_of(&first);
            if !others_in_flight || queued >= limits.overlap_at {
                break;
            }
            if tokio::time::timeout_at(until, waiting.changed.notified()).await.is_err() {
                break;
            }
        }
        let batch = gather(first, &mut carried, &mut rx, limits.max_batch, &waiting);
        let Some(store) = store.upgrade() else { return };
        let running = Running::start(slot, &waiting);
        tokio::spawn(async move {
            run(&store, batch).await;
            drop(running);
        });
    }
}

/// A statement's slot (a batch's or a lone append's): freed when it ends, however it
/// ends, and the batching task is told, as it may be waiting for statements in flight to
/// end.
struct Running {
    slot: Option<OwnedSemaphorePermit>,
    waiting: Arc<Waiting>,
}

impl Running {
    fn start(slot: OwnedSemaphorePermit, waiting: &Arc<Waiting>) -> Self {
        waiting.running.fetch_add(1, Ordering::AcqRel);
        Self { slot: Some(slot), waiting: waiting.clone() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.slot.take());
        self.waiting.running.fetch_sub(1, Ordering::AcqRel);
        self.waiting.changed.notify_one();
    }
}

/// Events of the appends carried over to a later batch.
fn events_in(carried: &VecDeque<Pending>) -> usize {
    carried.iter().map(events_of).sum()
}

fn events_of(p: &Pending) -> usize {
    p.request.events.len().max(1)
}

/// An append's weight in the queue: its events, or one for an empty append.
fn events_of_request(request: &AppendRequest) -> isize {
    isize::try_from(request.events.len().max(1)).unwrap_or(isize::MAX)
}

/// An append taken from the queue: its events no longer count as waiting there.
fn taken(p: Pending, waiting: &Waiting) -> Pending {
    waiting.events.fetch_sub(events_of_request(&p.request), Ordering::Relaxed);
    p
}

/// Fills a batch with distinct streams: first the appends carried over from earlier
/// batches (in order), then whatever is waiting. Appends to a stream already in the
/// batch wait for a later one, so per-stream order is kept.
fn gather(
    first: Pending,
    carried: &mut VecDeque<Pending>,
    rx: &mut mpsc::Receiver<Pending>,
    max: usize,
    waiting: &Waiting,
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
            Ok(p) => offer(taken(p, waiting), &mut batch, &mut later),
            Err(_) => break,
        }
    }
    *carried = later;
    batch
}

async fn run(store: &PgEventStore, batch: Vec<Pending>) {
    let span = tracing::debug_span!("group_commit", requests = batch.len(), events = tracing::field::Empty,);
    if !span.is_disabled() {
        span.record("events", batch.iter().map(events_of).sum::<usize>());
    }
    tracing::Instrument::instrument(run_batch(store, batch), span).await;
}

async fn run_batch(store: &PgEventStore, mut batch: Vec<Pending>) {
    if batch.len() == 1 {
        if let Some(p) = batch.pop() {
            let _ = p.reply.send(store.append_alone(p.request).await);
        }
        return;
    }
    let statement = if batch.iter().all(|p| is_plain(&p.request)) {
        plain_statement(store, &batch).await
    } else {
        shared_statement(store, &batch).await
    };
    match statement {
        Ok(results) => {
            if results.iter().any(|r| matches!(r, Ok(o) if o.last_position.is_some())) {
                store.wake().appended();
            }
            for (p, result) in batch.into_iter().zip(results) {
                let result = match result {
                    Ok(outcome) => Ok(outcome),
                    Err(Refused::At(head)) => store.rejected(&p.request, head).await,
                    Err(Refused::HeadUnknown) => match store.head_of(&p.request.stream_id).await {
                        Ok(head) => store.rejected(&p.request, head).await,
                        Err(error) => Err(error),
                    },
                };
                let _ = p.reply.send(result);
            }
        }
        Err(Failure::TryAlone(reason)) => {
            tracing::debug!(%reason, size = batch.len(), "group commit failed; appending one by one");
            let alone = batch.into_iter().map(|p| async move {
                let _ = p.reply.send(store.append_alone(p.request).await);
            });
            futures_util::future::join_all(alone).await;
        }
        Err(Failure::Everyone { context, error }) => {
            let (retryable, error) = (crate::error::is_transient(&error), Arc::new(error));
            for p in batch {
                let shared = SharedError(error.clone());
                let _ = p.reply.send(Err(Error::Backend(BackendError::new(context, retryable, shared))));
            }
        }
    }
}

/// Why an append of a batch was not written: its expected version did not hold.
pub(crate) enum Refused {
    /// The stream's version, as the statement saw it.
    At(StreamVersion),
    /// The statement did not say; it is read afterwards.
    HeadUnknown,
}

/// Why a shared statement gave no outcome per append.
pub(crate) enum Failure {
    /// Nothing was written and the cause may lie with one append (a race on a version or a
    /// command id, a value the database rejects): each append is tried on its own and gets
    /// its own outcome.
    TryAlone(String),
    /// The server is away or the statement's fate is unknown (the connection broke, the
    /// pool timed out, the server shut down, its results could not be read): every append
    /// of the batch gets this error. Trying each again here could append it twice (its
    /// commit may have gone through) and would hide the outage from the callers.
    Everyone { context: &'static str, error: sqlx::Error },
}

impl Failure {
    pub(crate) fn of_statement(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if !db.code().is_some_and(|c| server_away(&c)) => {
                Self::TryAlone(error.to_string())
            }
            _ => Self::Everyone { context: "group commit", error },
        }
    }
}

/// SQLSTATE classes after which no statement of the batch would fare better alone:
/// connection exceptions, insufficient resources, operator intervention (shutdown), system
/// errors.
fn server_away(code: &str) -> bool {
    ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class))
}

/// One database error handed to every append of a failed batch.
#[derive(Debug)]
struct SharedError(Arc<sqlx::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
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
) -> Result<Vec<Result<AppendOutcome, Refused>>, Failure> {
    let c = BatchColumns::new(batch).map_err(|e| Failure::TryAlone(e.to_string()))?;
    let query = sqlx::query(&store.sql().append_batch)
        .bind(&c.index)
        .bind(&c.streams)
        .bind(&c.kinds)
        .bind(&c.exacts)
        .bind(&c.commands)
        .bind(&c.counts)
        .bind(&c.event_index)
        .bind(&c.ordinal);
    let mut conn = store.warm().await.map_err(Failure::of_statement)?;
    let rows = c.events.bind_to(query).fetch_all(&mut *conn).await.map_err(Failure::of_statement)?;
    conn.keep();
    // The batch is committed: a row that cannot be read must not send its appends again.
    let decode = |error| Failure::Everyone { context: "decoding a group commit", error };
    let mut results = Vec::with_capacity(batch.len());
    for (p, row) in batch.iter().zip(&rows) {
        let head = StreamVersion(unsigned(row.try_get(1).map_err(decode)?));
        let Some(base) = row.try_get::<Option<i64>, _>(2).map_err(decode)? else {
            results.push(Err(Refused::At(head)));
            continue;
        };
        let xid: Option<i64> = row.try_get(3).map_err(decode)?;
        let sequence: Option<i64> = row.try_get(4).map_err(decode)?;
        let previous = StreamVersion(unsigned(base));
        results.push(Ok(AppendOutcome {
            stream_id: p.request.stream_id.clone(),
            command_id: p.request.command_id,
            previous_version: previous,
            version: StreamVersion(previous.0 + p.request.events.len() as u64),
            last_position: xid.zip(sequence).map(|(x, s)| LogPosition::new(unsigned(x), unsigned(s))),
            duplicate: false,
        }));
    }
    Ok(results)
}

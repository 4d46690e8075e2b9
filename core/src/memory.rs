//! An event store in memory, for tests, examples and embedded mode.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::ids::{CommandId, EventId};
use crate::store::{AppendOutcome, AppendRequest, EventStore, Snapshot, DEFAULT_MAX_EVENT_BYTES};
use crate::stream_id::StreamId;
use crate::version::{LogPosition, StreamVersion};

#[derive(Debug, Default)]
struct Inner {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, Vec<usize>>,
    event_ids: HashSet<EventId>,
    commands: HashMap<CommandId, AppendOutcome>,
    snapshots: HashMap<StreamId, Snapshot>,
    transactions: u64,
}

/// An [`EventStore`] in memory. Cloning shares the same store.
///
/// Every append is one "transaction": its events get consecutive sequence numbers and
/// the append's transaction number, so log positions order as in the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct InMemoryEventStore {
    inner: Arc<Mutex<Inner>>,
    head: watch::Sender<LogPosition>,
    max_event_bytes: usize,
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryEventStore {
    /// An empty store with the default event size limit.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            head: watch::Sender::new(LogPosition::START),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// Sets the largest accepted event (payload plus metadata), in bytes.
    pub fn with_max_event_bytes(mut self, limit: usize) -> Self {
        self.max_event_bytes = limit;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied append: appends
        // validate everything before changing anything. So a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append_now(&self, mut request: AppendRequest) -> Result<AppendOutcome> {
        request.validate(self.max_event_bytes)?;
        let mut inner = self.lock();
        if let Some(outcome) = request.command_id.and_then(|id| inner.commands.get(&id)) {
            return Ok(AppendOutcome { duplicate: true, ..outcome.clone() });
        }
        let actual = StreamVersion(inner.streams.get(&request.stream_id).map_or(0, |v| v.len() as u64));
        let last = inner.streams.get(&request.stream_id).and_then(|v| v.last()).map(|i| &inner.log[*i]);
        if last.is_some_and(RecordedEvent::is_tombstone) {
            return Err(Error::StreamDeleted { stream: request.stream_id, version: actual });
        }
        if !request.expected.accepts(actual) {
            return Err(Error::Conflict { stream: request.stream_id, expected: request.expected, actual });
        }
        let stream_tenant = match inner.streams.get(&request.stream_id).and_then(|v| v.first()) {
            Some(first) => inner.log[*first].metadata.tenant.clone(),
            None => request.events.first().and_then(|e| e.metadata.tenant.clone()),
        };
        // A tombstone that carries no tenant takes its stream's.
        for e in request.events.iter_mut().filter(|e| e.is_tombstone() && e.metadata.tenant.is_none()) {
            e.metadata.tenant.clone_from(&stream_tenant);
        }
        if let Some(e) = request.events.iter().find(|e| e.metadata.tenant != stream_tenant) {
            return Err(Error::TenantMismatch {
                stream: request.stream_id,
                stream_tenant,
                tenant: e.metadata.tenant.clone(),
            });
        }
        let mut seen = HashSet::new();
        if let Some(e) =
            request.events.iter().find(|e| inner.event_ids.contains(&e.event_id) || !seen.insert(e.event_id))
        {
            return Err(Error::DuplicateEventId(e.event_id));
        }
        inner.transactions += 1;
        let transaction = inner.transactions;
        let recorded_at = Utc::now();
        let mut version = actual;
        let mut last_position = None;
        for event in request.events {
            version = version.next();
            let position = LogPosition::new(transaction, inner.log.len() as u64 + 1);
            last_position = Some(position);
            inner.event_ids.insert(event.event_id);
            let index = inner.log.len();
            inner.streams.entry(request.stream_id.clone()).or_default().push(index);
            inner.log.push(RecordedEvent {
                event_id: event.event_id,
                stream_id: request.stream_id.clone(),
                stream_version: version,
                position,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at,
            });
        }
        let outcome = AppendOutcome {
            stream_id: request.stream_id,
            command_id: request.command_id,
            previous_version: actual,
            version,
            last_position,
            duplicate: false,
        };
        if let Some(id) = request.command_id {
            inner.commands.insert(id, outcome.clone());
        }
        drop(inner);
        if let Some(position) = last_position {
            self.head.send_replace(position);
        }
        Ok(outcome)
    }
}

impl EventStore for InMemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        self.append_now(request)
    }

    async fn read_stream(&self, stream_id: &StreamId, from: StreamVersion, limit: usize) -> Result<Vec<RecordedEvent>> {
        let inner = self.lock();
        let Some(indexes) = inner.streams.get(stream_id) else { return Ok(Vec::new()) };
        let skip = from.0.saturating_sub(1) as usize;
        Ok(indexes.iter().skip(skip).take(limit).map(|i| inner.log[*i].clone()).collect())
    }

    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>> {
        let inner = self.lock();
        let start = inner.log.partition_point(|e| e.position <= after);
        Ok(inner.log[start..].iter().take(limit).cloned().collect())
    }

    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool> {
        let mut receiver = self.head.subscribe();
        let woken = tokio::time::timeout(timeout, receiver.wait_for(|head| *head > after)).await;
        Ok(matches!(woken, Ok(Ok(_))))
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<StreamVersion> {
        Ok(StreamVersion(self.lock().streams.get(stream_id).map_or(0, |v| v.len() as u64)))
    }

    async fn log_head(&self) -> Result<Option<LogPosition>> {
        Ok(self.lock().log.last().map(|e| e.position))
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>> {
        Ok(self.lock().commands.get(&command_id).map(|o| AppendOutcome { duplicate: true, ..o.clone() }))
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(stream_id).cloned())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let mut inner = self.lock();
        let keep_old = inner.snapshots.get(&snapshot.stream_id).is_some_and(|old| {
            old.schema_version == snapshot.schema_version && old.stream_version > snapshot.stream_version
        });
        if !keep_old {
            inner.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }
}

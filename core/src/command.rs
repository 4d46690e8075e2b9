//! Command handling: load (snapshot + later events) → decide → append.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::cache::StateCache;
use crate::codec::EventCodec;
use crate::error::Error;
use crate::event::{Envelope, NewEvent};
use crate::ids::CommandId;
use crate::metadata::Metadata;
use crate::store::{AppendOutcome, AppendRequest, EventStore, Snapshot};
use crate::stream_id::StreamId;
use crate::version::{ExpectedVersion, StreamVersion};

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate refused the command; nothing was written.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The store failed, or the stream was not at the expected version after all retries.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Options of one command.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CommandOptions {
    /// Makes the command idempotent: a second command with the same id appends nothing
    /// and returns the first one's outcome.
    pub command_id: Option<CommandId>,
    /// Metadata copied onto every event the command produces.
    pub metadata: Metadata,
    /// If set, the stream must be at this version; a mismatch is a conflict, never retried.
    pub expected: Option<ExpectedVersion>,
}

impl CommandOptions {
    /// No id, empty metadata, no expected version.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the command id.
    pub fn id(mut self, id: CommandId) -> Self {
        self.command_id = Some(id);
        self
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Requires the stream to be at a version.
    pub fn expect(mut self, expected: ExpectedVersion) -> Self {
        self.expected = Some(expected);
        self
    }

    /// Options of a command a process manager issues in reaction to `event`, as its
    /// `step` (a name unique within the reaction): the command id is derived from the
    /// event's id and `step`, so a redelivered event issues "the same" command and the
    /// store returns the first outcome instead of appending again; the new events carry
    /// the event's correlation id, the event's id as causation id, and its user and tenant;
    /// a valid `traceparent` (and `tracestate`) of the event is copied, so the command's
    /// events record a child of the event's trace context.
    ///
    /// ```
    /// # use tidemark::{CommandOptions, Envelope, EventId, LogPosition, Metadata, StreamId, StreamVersion};
    /// # let event = Envelope { event_id: EventId::new(), stream_id: StreamId::new("order-1").unwrap(),
    /// #     stream_version: StreamVersion(3), position: LogPosition::START, metadata: Metadata::new(),
    /// #     recorded_at: chrono::Utc::now(), event: () };
    /// let first = CommandOptions::reacting_to(&event, "request-fulfilment");
    /// let again = CommandOptions::reacting_to(&event, "request-fulfilment");
    /// assert_eq!(first.command_id, again.command_id);
    /// assert_eq!(first.metadata.causation_id, Some(event.event_id.0));
    /// ```
    pub fn reacting_to<E>(event: &Envelope<E>, step: &str) -> Self {
        let mut metadata = Metadata::new().with_causation_id(event.event_id.0);
        metadata.correlation_id = event.metadata.correlation_id.or(Some(event.event_id.0));
        metadata.user.clone_from(&event.metadata.user);
        metadata.tenant.clone_from(&event.metadata.tenant);
        if let Some(trace) = crate::trace::TraceContext::of_metadata(&event.metadata) {
            trace.record(&mut metadata);
        }
        Self { command_id: Some(CommandId::derived(event.event_id.0, step)), metadata, expected: None }
    }
}

/// Snapshots of an aggregate, taken every `every` events.
pub struct SnapshotPolicy<A> {
    every: u64,
    schema_version: u32,
    encode: fn(&A) -> Result<serde_json::Value, serde_json::Error>,
    decode: fn(serde_json::Value) -> Result<A, serde_json::Error>,
}

impl<A> fmt::Debug for SnapshotPolicy<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotPolicy")
            .field("every", &self.every)
            .field("schema_version", &self.schema_version)
            .finish()
    }
}

impl<A: Aggregate + Serialize + DeserializeOwned> SnapshotPolicy<A> {
    /// A snapshot every `every` events (at least 1), with the state's schema version.
    /// Snapshots with another schema version are ignored and replaced.
    pub fn every(every: u64, schema_version: u32) -> Self {
        Self {
            every: every.max(1),
            schema_version,
            encode: |state| serde_json::to_value(state),
            decode: serde_json::from_value,
        }
    }
}

/// Knobs of a [`CommandHandler`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// How often a command is decided again after a version conflict (default 3).
    pub conflict_retries: u32,
    /// Events read per page when loading a stream (default 1000).
    pub read_page: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self { conflict_retries: 3, read_page: 1000 }
    }
}

/// An aggregate's state as loaded from the store.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The stream version the state includes.
    pub version: StreamVersion,
    /// Whether a stored snapshot was present but unusable (other schema version).
    pub stale_snapshot: bool,
}

/// States kept by a new handler (see [`CommandHandler::with_cache`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Handles commands for one aggregate type against a store.
///
/// By default it keeps the last [`DEFAULT_CACHE_CAPACITY`] aggregate states in memory,
/// so a command on a recently used stream appends without reading it first, and
/// decides on the empty state without a read when [`Aggregate::creates_stream`] says so
/// (or the caller expects no stream). Both are shortcuts, never rules: a stale state or
/// a wrong guess costs one version conflict, after which the handler reads the stream
/// and decides again.
pub struct CommandHandler<A: Aggregate, S> {
    store: S,
    codec: Arc<EventCodec<A::Event>>,
    config: HandlerConfig,
    snapshots: Option<SnapshotPolicy<A>>,
    cache: Option<StateCache<A>>,
}

impl<A: Aggregate, S> fmt::Debug for CommandHandler<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandHandler")
            .field("aggregate", &A::CATEGORY)
            .field("config", &self.config)
            .field("snapshots", &self.snapshots)
            .field("cache", &self.cache.as_ref().map(StateCache::capacity))
            .finish()
    }
}

impl<A: Aggregate, S: EventStore> CommandHandler<A, S> {
    /// A handler with default configuration, the default state cache and no snapshots.
    pub fn new(store: S, codec: Arc<EventCodec<A::Event>>) -> Self {
        let cache = NonZeroUsize::new(DEFAULT_CACHE_CAPACITY).map(StateCache::new);
        Self { store, codec, config: HandlerConfig::default(), snapshots: None, cache }
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: HandlerConfig) -> Self {
        self.config = config;
        self
    }

    /// Enables snapshots.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy<A>) -> Self {
        self.snapshots = Some(policy);
        self
    }

    /// Keeps up to `capacity` aggregate states in memory after each command, so the next
    /// command on the same stream skips the load. A state made stale by another writer
    /// costs one version conflict, after which the handler loads from the store and
    /// decides again; correctness never depends on the cache.
    pub fn with_cache(mut self, capacity: NonZeroUsize) -> Self {
        self.cache = Some(StateCache::new(capacity));
        self
    }

    /// Reads every stream before deciding: no state is kept between commands.
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The codec.
    pub fn codec(&self) -> &Arc<EventCodec<A::Event>> {
        &self.codec
    }

    /// Loads an aggregate: its snapshot (if enabled and current), then the later events.
    /// Fails with [`Error::StreamDeleted`] for a stream that ends with a tombstone.
    pub async fn load(&self, stream_id: &StreamId) -> Result<Loaded<A>, Error> {
        let (mut state, mut version, stale_snapshot) = self.load_snapshot(stream_id).await?;
        loop {
            let page = self.store.read_stream(stream_id, version.next(), self.config.read_page).await?;
            for recorded in &page {
                if recorded.is_tombstone() {
                    return Err(Error::StreamDeleted { stream: stream_id.clone(), version: recorded.stream_version });
                }
                state.evolve(&self.codec.decode_event(recorded)?);
                version = recorded.stream_version;
            }
            if page.len() < self.config.read_page {
                return Ok(Loaded { state, version, stale_snapshot });
            }
        }
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<(A, StreamVersion, bool), Error> {
        let Some(policy) = &self.snapshots else {
            return Ok((A::default(), StreamVersion::EMPTY, false));
        };
        let Some(snapshot) = self.store.load_snapshot(stream_id).await? else {
            return Ok((A::default(), StreamVersion::EMPTY, false));
        };
        if snapshot.schema_version != policy.schema_version {
            return Ok((A::default(), StreamVersion::EMPTY, true));
        }
        match (policy.decode)(snapshot.state) {
            Ok(state) => Ok((state, snapshot.stream_version, false)),
            Err(_) => Ok((A::default(), StreamVersion::EMPTY, true)),
        }
    }

    /// Handles a command: load, decide, append; decides again after a conflict (up to
    /// the configured retries) unless the options require an exact version.
    pub async fn handle(
        &self,
        stream_id: &StreamId,
        command: &A::Command,
        options: &CommandOptions,
    ) -> Result<AppendOutcome, CommandError<A::Error>> {
        let mut metadata = effective_metadata(options);
        let trace = crate::trace::stamp(&mut metadata);
        let span = tracing::info_span!(
            "command",
            category = A::CATEGORY,
            stream = %stream_id,
            command_id = ?options.command_id,
            correlation_id = ?metadata.correlation_id,
            causation_id = ?metadata.causation_id,
            traceparent = tracing::field::Empty,
        );
        if let Some(trace) = trace {
            span.record("traceparent", tracing::field::display(trace));
        }
        let started = std::time::Instant::now();
        let result =
            tracing::Instrument::instrument(self.handle_with(stream_id, command, options, metadata), span).await;
        crate::metrics::command_handled(A::CATEGORY, &result, started.elapsed());
        result
    }

    async fn handle_with(
        &self,
        stream_id: &StreamId,
        command: &A::Command,
        options: &CommandOptions,
        metadata: Metadata,
    ) -> Result<AppendOutcome, CommandError<A::Error>> {
        let (mut attempt, mut shortcuts) = (0, true);
        loop {
            attempt += 1;
            let (loaded, source) = self.starting_state(stream_id, command, options, shortcuts).await?;
            shortcuts = false;
            if let Some(expected) = options.expected.filter(|e| !e.accepts(loaded.version)) {
                let conflict = Error::Conflict { stream: stream_id.clone(), expected, actual: loaded.version };
                return self.earlier_outcome_or(options, CommandError::Store(conflict)).await;
            }
            let events = match (loaded.state.decide(command), source) {
                (Ok(events), _) => events,
                // The cached state may be stale, the guess wrong: decide on the stored state.
                (Err(_), Source::Cache | Source::GuessedNew) => continue,
                (Err(e), Source::ExpectedNew) => {
                    let error = self.conflict_if_exists(stream_id, options, e).await?;
                    return self.earlier_outcome_or(options, error).await;
                }
                (Err(e), Source::Store) => {
                    self.keep(stream_id, loaded.state, loaded.version);
                    return self.earlier_outcome_or(options, CommandError::Rejected(e)).await;
                }
            };
            let request = self.request(stream_id, loaded.version, &events, &metadata, options)?;
            match self.store.append(request).await {
                Ok(outcome) => {
                    if !outcome.duplicate {
                        self.after_append(stream_id, loaded, &events, &outcome).await;
                    }
                    return Ok(outcome);
                }
                Err(Error::Conflict { actual, .. }) => {
                    if attempt <= self.config.conflict_retries && may_retry(options.expected, source) {
                        continue;
                    }
                    let expected = options.expected.unwrap_or(ExpectedVersion::Exact(loaded.version));
                    return Err(Error::Conflict { stream: stream_id.clone(), expected, actual }.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn request(
        &self,
        stream_id: &StreamId,
        version: StreamVersion,
        events: &[A::Event],
        metadata: &Metadata,
        options: &CommandOptions,
    ) -> Result<AppendRequest, Error> {
        let events =
            events.iter().map(|e| NewEvent::from_domain(e, metadata.clone())).collect::<Result<Vec<_>, _>>()?;
        let mut request = AppendRequest::new(stream_id.clone(), ExpectedVersion::Exact(version), events);
        request.command_id = options.command_id;
        Ok(request)
    }

    async fn earlier_outcome_or(
        &self,
        options: &CommandOptions,
        error: CommandError<A::Error>,
    ) -> Result<AppendOutcome, CommandError<A::Error>> {
        let Some(id) = options.command_id else { return Err(error) };
        match self.store.command_outcome(id).await? {
            Some(mut outcome) => {
                outcome.duplicate = true;
                Ok(outcome)
            }
            None => Err(error),
        }
    }

    /// The state to decide on: empty for a stream that must not exist yet, the cached
    /// one on a first attempt, otherwise loaded from the store.
    /// Shortcuts (assuming a new stream, using the cache) are taken only on a first
    /// attempt; any retry decides on the stored state.
    async fn starting_state(
        &self,
        stream_id: &StreamId,
        command: &A::Command,
        options: &CommandOptions,
        shortcuts: bool,
    ) -> Result<(Loaded<A>, Source), Error> {
        let empty = || Loaded { state: A::default(), version: StreamVersion::EMPTY, stale_snapshot: false };
        let expects_new =
            matches!(options.expected, Some(ExpectedVersion::NoStream | ExpectedVersion::Exact(StreamVersion::EMPTY)));
        if shortcuts && expects_new {
            return Ok((empty(), Source::ExpectedNew));
        }
        if shortcuts && options.expected.is_none() && A::creates_stream(command) {
            return Ok((empty(), Source::GuessedNew));
        }
        let cached = self.cache.as_ref().filter(|_| shortcuts).and_then(|c| c.take(stream_id));
        // A cached state that misses the caller's expectation may just be stale: load.
        if let Some((state, version)) = cached.filter(|(_, v)| options.expected.is_none_or(|e| e.accepts(*v))) {
            return Ok((Loaded { state, version, stale_snapshot: false }, Source::Cache));
        }
        Ok((self.load(stream_id).await?, Source::Store))
    }

    /// A command decided on an assumed-empty stream was rejected: if the stream exists
    /// after all, the caller's expectation was wrong, which is a conflict.
    async fn conflict_if_exists(
        &self,
        stream_id: &StreamId,
        options: &CommandOptions,
        rejection: A::Error,
    ) -> Result<CommandError<A::Error>, Error> {
        let actual = self.store.stream_version(stream_id).await?;
        Ok(match options.expected {
            Some(expected) if !expected.accepts(actual) => {
                CommandError::Store(Error::Conflict { stream: stream_id.clone(), expected, actual })
            }
            _ => CommandError::Rejected(rejection),
        })
    }

    fn keep(&self, stream_id: &StreamId, state: A, version: StreamVersion) {
        if let Some(cache) = &self.cache {
            cache.put(stream_id.clone(), state, version);
        }
    }

    /// Brings the state up to date and caches it, and saves a snapshot when one is due.
    async fn after_append(
        &self,
        stream_id: &StreamId,
        loaded: Loaded<A>,
        events: &[A::Event],
        outcome: &AppendOutcome,
    ) {
        let due = self
            .snapshots
            .as_ref()
            .filter(|p| loaded.stale_snapshot || outcome.version.0 / p.every > loaded.version.0 / p.every);
        if due.is_none() && self.cache.is_none() {
            return;
        }
        let mut state = loaded.state;
        for event in events {
            state.evolve(event);
        }
        if let Some(policy) = due {
            self.save_snapshot(stream_id, policy, &state, outcome.version).await;
        }
        self.keep(stream_id, state, outcome.version);
    }

    async fn save_snapshot(&self, stream_id: &StreamId, policy: &SnapshotPolicy<A>, state: &A, version: StreamVersion) {
        let value = match (policy.encode)(state) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(stream = %stream_id, %error, "cannot serialise the aggregate for a snapshot");
                return;
            }
        };
        let snapshot = Snapshot {
            stream_id: stream_id.clone(),
            schema_version: policy.schema_version,
            stream_version: version,
            state: value,
            taken_at: chrono::Utc::now(),
        };
        // A failed snapshot only costs a longer load next time; the command succeeded.
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(stream = %stream_id, %error, "cannot save a snapshot");
        }
    }
}

/// Where the state a command was decided on came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Read from the store for this attempt.
    Store,
    /// Taken from the cache: possibly stale.
    Cache,
    /// Assumed empty because the caller expects no stream.
    ExpectedNew,
    /// Assumed empty because the aggregate says the command creates its stream.
    GuessedNew,
}

/// Whether a version conflict is worth deciding again: always for a possibly stale
/// cached state or a guessed-new one; for a stored state only when the caller did not
/// pin a version.
fn may_retry(expected: Option<ExpectedVersion>, source: Source) -> bool {
    matches!(source, Source::Cache | Source::GuessedNew)
        || matches!(expected, None | Some(ExpectedVersion::Any | ExpectedVersion::StreamExists))
}

fn effective_metadata(options: &CommandOptions) -> Metadata {
    let mut metadata = options.metadata.clone();
    let origin = options.command_id.map_or_else(Uuid::now_v7, |id| id.0);
    metadata.correlation_id.get_or_insert(origin);
    metadata.causation_id.get_or_insert(origin);
    metadata
}

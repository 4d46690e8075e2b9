//! tidemark's side: commands through `CommandHandler` (load, decide, append) and bare
//! `EventStore::append` calls, over `PgEventStore`.

use std::num::NonZeroUsize;
use std::sync::Arc;

use anyhow::{Context, Result};
use tidemark::{
    AppendRequest, CommandHandler, CommandId, CommandOptions, EventCodec, EventStore, ExpectedVersion, Metadata,
    NewEvent, StreamId, StreamVersion,
};
use tidemark_postgres::PgEventStore;
use uuid::Uuid;

use crate::domain::{booking, busy_command, opened, Account, AccountCommand, AccountEvent};
use crate::runner::Op;

/// The command handler shared by a measurement's writers.
pub(crate) type Handler = CommandHandler<Account, PgEventStore>;

/// Which of the framework's shortcuts a measurement uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tuning {
    /// None: no state cache, and no "creates a stream" shortcut (every command reads its
    /// stream before deciding).
    Plain,
    /// The defaults without group commit in the store (`PgStoreConfig::group_commit(false)`).
    NoGroupCommit,
    /// What `CommandHandler::new` and `PgStoreConfig::default()` give: the state cache,
    /// the `Aggregate::creates_stream` shortcut and group commit.
    Default,
    /// The defaults, each command with a fresh command id (idempotent: the id is recorded
    /// with the command's events).
    Idempotent,
}

impl Tuning {
    /// Whether the store groups concurrent appends into shared commits.
    pub(crate) fn group_commit(self) -> bool {
        matches!(self, Self::Default | Self::Idempotent)
    }
}

/// A handler whose state cache holds at least `cache` entries (none when plain).
fn handler(store: PgEventStore, tuning: Tuning, cache: usize) -> Result<Arc<Handler>> {
    let codec = EventCodec::<AccountEvent>::without_upcasters()?;
    let handler = CommandHandler::new(store, Arc::new(codec));
    Ok(Arc::new(match (tuning, NonZeroUsize::new(cache.max(tidemark::DEFAULT_CACHE_CAPACITY))) {
        (Tuning::Plain, _) | (_, None) => handler.without_cache(),
        (_, Some(capacity)) => handler.with_cache(capacity),
    }))
}

/// A fresh account stream id (random, like most applications' aggregate ids).
pub(crate) fn new_account() -> Result<StreamId> {
    Ok(StreamId::for_entity("account", Uuid::new_v4().simple())?)
}

/// What a writer does on each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// F1 (i): open a new account; one event.
    Open,
    /// F1 (ii): deposit or withdraw on one of the writer's seeded accounts; one event.
    Busy,
    /// F2: import an account with `n - 1` bookings; `n` events in one append.
    Import(usize),
}

/// One writer sending commands through the handler.
#[derive(Debug)]
pub(crate) struct CommandWriter {
    handler: Arc<Handler>,
    work: Work,
    /// The writer's accounts (for `Work::Busy`).
    streams: Vec<StreamId>,
    /// Options of commands that create a stream.
    create: CommandOptions,
    /// Whether each command carries a fresh command id.
    idempotent: bool,
    /// Whether the handler keeps a state cache.
    cached: bool,
    n: u64,
}

/// One command writer per hand of streams, sharing one handler over `store`.
pub(crate) fn command_writers(
    store: &PgEventStore,
    work: Work,
    tuning: Tuning,
    hands: Vec<Vec<StreamId>>,
) -> Result<Vec<CommandWriter>> {
    anyhow::ensure!(work != Work::Busy || hands.iter().all(|h| !h.is_empty()), "a writer has no account to work on");
    let handler = handler(store.clone(), tuning, hands.iter().map(Vec::len).sum())?;
    let create = match tuning {
        // Any version: turns the "creates a stream" shortcut off, so the command reads first.
        Tuning::Plain => CommandOptions::new().expect(ExpectedVersion::Any),
        Tuning::Default | Tuning::NoGroupCommit | Tuning::Idempotent => CommandOptions::new(),
    };
    let writer = |(i, streams)| CommandWriter {
        handler: handler.clone(),
        work,
        streams,
        create: create.clone(),
        idempotent: tuning == Tuning::Idempotent,
        cached: tuning != Tuning::Plain,
        n: (i as u64) << 32,
    };
    Ok(hands.into_iter().enumerate().map(writer).collect())
}

impl Op for CommandWriter {
    async fn run(&mut self) -> Result<u64> {
        self.n += 1;
        let n = self.n;
        let plain = CommandOptions::new();
        let (stream, command, options) = match self.work {
            Work::Open => (new_account()?, AccountCommand::Open(opened(n)), &self.create),
            Work::Busy => {
                let (slot, command) = busy_command(n, self.streams.len());
                (self.streams[slot].clone(), command, &plain)
            }
            Work::Import(events) => {
                let bookings = (1..events as u64).map(|i| booking(n * 1000 + i, 5_000)).collect();
                (new_account()?, AccountCommand::Import { open: opened(n), bookings }, &self.create)
            }
        };
        let outcome = if self.idempotent {
            let options = options.clone().id(CommandId::new());
            self.handler.handle(&stream, &command, &options).await?
        } else {
            self.handler.handle(&stream, &command, options).await?
        };
        Ok(outcome.appended())
    }

    /// With a state cache, one command on each of the writer's accounts: the cache then
    /// holds them all, as in a process that has run for a while. The time-based warm-up
    /// alone left a share of the window's commands loading their account for the first
    /// time, a share that grew as the machine got slower (at one writer, about 1,000
    /// commands a second against 4,096 accounts: most of a 5 s window). What a command
    /// that loads its stream costs is `F1-existing-plain`'s figure.
    async fn prime(&mut self) -> Result<()> {
        if self.work != Work::Busy || !self.cached {
            return Ok(());
        }
        for _ in 0..self.streams.len() {
            self.run().await?;
        }
        Ok(())
    }
}

/// One writer calling `EventStore::append` directly with `ExpectedVersion::Exact`:
/// what a command costs without loading the stream and deciding.
#[derive(Debug)]
pub(crate) struct AppendWriter {
    store: PgEventStore,
    /// The writer's streams and their versions; empty: a new stream per append.
    streams: Vec<(StreamId, StreamVersion)>,
    n: u64,
}

impl AppendWriter {
    /// `streams` were seeded with `history` events each (none: a new stream per append).
    pub(crate) fn new(store: PgEventStore, streams: Vec<StreamId>, history: usize, writer: usize) -> Self {
        let streams = streams.into_iter().map(|s| (s, StreamVersion(history as u64))).collect();
        Self { store, streams, n: (writer as u64) << 32 }
    }
}

impl Op for AppendWriter {
    async fn run(&mut self) -> Result<u64> {
        self.n += 1;
        let n = self.n;
        let slot = (!self.streams.is_empty()).then(|| n as usize % self.streams.len());
        let (stream, version, event) = match slot {
            None => (new_account()?, StreamVersion::EMPTY, AccountEvent::from(opened(n))),
            Some(i) => {
                let (stream, version) = self.streams[i].clone();
                (stream, version, AccountEvent::Deposited(booking(n, 5_000)))
            }
        };
        let id = Uuid::now_v7();
        let metadata = Metadata::new().with_correlation_id(id).with_causation_id(id);
        let event = NewEvent::from_domain(&event, metadata)?;
        let request = AppendRequest::new(stream, ExpectedVersion::Exact(version), vec![event]);
        let outcome = self.store.append(request).await?;
        if let Some(i) = slot {
            self.streams[i].1 = outcome.version;
        }
        Ok(outcome.appended())
    }
}

/// Opens `count` accounts with `history` events each (one append per account,
/// 16 at a time) and returns their stream ids.
pub(crate) async fn seed(store: &PgEventStore, count: usize, history: usize) -> Result<Vec<StreamId>> {
    let streams: Vec<StreamId> = (0..count).map(|_| new_account()).collect::<Result<_>>()?;
    let mut tasks = tokio::task::JoinSet::new();
    for (t, chunk) in streams.chunks(count.div_ceil(16).max(1)).enumerate() {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for (i, stream) in chunk.into_iter().enumerate() {
                let n = ((t * 1_000_000 + i) * history) as u64;
                let mut events = vec![NewEvent::from_domain(&AccountEvent::from(opened(n)), Metadata::new())?];
                for k in 1..history as u64 {
                    events.push(NewEvent::from_domain(
                        &AccountEvent::Deposited(booking(n + k, 10_000)),
                        Metadata::new(),
                    )?);
                }
                store.append(AppendRequest::new(stream, ExpectedVersion::NoStream, events)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a seeding task panicked")??;
    }
    Ok(streams)
}

/// Deals `streams` out to `writers` writers, round robin.
pub(crate) fn deal<T: Clone>(streams: &[T], writers: usize) -> Vec<Vec<T>> {
    let mut hands = vec![Vec::new(); writers];
    for (i, s) in streams.iter().enumerate() {
        hands[i % writers].push(s.clone());
    }
    hands
}

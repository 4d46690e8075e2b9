//! The sample aggregate (a wallet) and helpers shared by the command handler tests.
#![allow(dead_code)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark::{
    Aggregate, AppendOutcome, CommandError, CommandHandler, CommandOptions, Error, EventCodec, EventStore,
    ExpectedVersion, InMemoryEventStore, LogPosition, RecordedEvent, StreamId, StreamVersion,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// A wallet: opened once, never overdrawn.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Opened {
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Credited {
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Debited {
    pub cents: i64,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum WalletEvent {
        Opened(Opened) = ("WalletOpened", 1),
        Credited(Credited) = ("WalletCredited", 1),
        Debited(Debited) = ("WalletDebited", 1),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WalletCommand {
    Open {
        owner: String,
        initial: i64,
    },
    Credit(i64),
    /// Two credits in one command: a command that records two events.
    CreditTwice(i64, i64),
    Debit(i64),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum WalletError {
    #[error("the wallet is already open")]
    AlreadyOpen,
    #[error("the wallet is not open")]
    NotOpen,
    #[error("amounts are positive")]
    NotPositive,
    #[error("balance {balance} is below {requested}")]
    Insufficient { balance: i64, requested: i64 },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Wallet {
    pub open: bool,
    pub owner: String,
    pub balance: i64,
}

fn positive(cents: i64) -> Result<(), WalletError> {
    if cents > 0 {
        Ok(())
    } else {
        Err(WalletError::NotPositive)
    }
}

impl Aggregate for Wallet {
    const CATEGORY: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;

    fn decide(&self, command: &WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        if let WalletCommand::Open { owner, initial } = command {
            if self.open {
                return Err(WalletError::AlreadyOpen);
            }
            let mut events = vec![Opened { owner: owner.clone() }.into()];
            if *initial > 0 {
                events.push(Credited { cents: *initial }.into());
            }
            return Ok(events);
        }
        if !self.open {
            return Err(WalletError::NotOpen);
        }
        match command {
            WalletCommand::Credit(cents) => {
                positive(*cents)?;
                Ok(vec![Credited { cents: *cents }.into()])
            }
            WalletCommand::CreditTwice(a, b) => {
                positive(*a)?;
                positive(*b)?;
                Ok(vec![Credited { cents: *a }.into(), Credited { cents: *b }.into()])
            }
            WalletCommand::Debit(cents) => {
                positive(*cents)?;
                if *cents > self.balance {
                    return Err(WalletError::Insufficient { balance: self.balance, requested: *cents });
                }
                Ok(vec![Debited { cents: *cents }.into()])
            }
            WalletCommand::Open { .. } => unreachable!("handled above"),
        }
    }

    fn evolve(&mut self, event: &WalletEvent) {
        match event {
            WalletEvent::Opened(e) => {
                self.open = true;
                self.owner = e.owner.clone();
            }
            WalletEvent::Credited(e) => self.balance += e.cents,
            WalletEvent::Debited(e) => self.balance -= e.cents,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

pub(crate) type Handler<S = InMemoryEventStore> = CommandHandler<Wallet, S>;

pub(crate) fn codec() -> Arc<EventCodec<WalletEvent>> {
    Arc::new(EventCodec::without_upcasters().unwrap())
}

pub(crate) fn handler() -> Handler {
    CommandHandler::new(InMemoryEventStore::new(), codec())
}

pub(crate) fn wallet() -> StreamId {
    StreamId::for_entity(Wallet::CATEGORY, Uuid::now_v7().simple()).unwrap()
}

pub(crate) fn open(initial: i64) -> WalletCommand {
    WalletCommand::Open { owner: "alice".into(), initial }
}

pub(crate) fn no_options() -> CommandOptions {
    CommandOptions::new()
}

pub(crate) async fn events<S: EventStore>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    tidemark::read_stream_to_end(store, stream, StreamVersion(1), 100).await.unwrap()
}

pub(crate) async fn decoded<S: EventStore>(h: &Handler<S>, stream: &StreamId) -> Vec<WalletEvent> {
    let stored = events(h.store(), stream).await;
    stored.iter().map(|e| h.codec().decode_event(e).unwrap()).collect()
}

pub(crate) async fn head<S: EventStore>(store: &S) -> Option<LogPosition> {
    store.log_head().await.unwrap()
}

pub(crate) fn credited(cents: i64) -> WalletEvent {
    Credited { cents }.into()
}

pub(crate) fn expect_conflict(
    result: Result<AppendOutcome, CommandError<WalletError>>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(CommandError::Store(Error::Conflict { stream: s, expected: e, actual: a })) => {
            assert_eq!((&s, e, a), (stream, expected, StreamVersion(actual)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub(crate) fn opened(owner: &str) -> WalletEvent {
    Opened { owner: owner.into() }.into()
}

// ---------------------------------------------------------------------------------------
// A store that watches the handler: counts stream reads and conflicts, and can yield to
// the scheduler before appends and reads so that tasks on one thread interleave between
// loading a stream and appending to it.

#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    pub inner: InMemoryEventStore,
    pub interleave: bool,
    pub reads: Arc<std::sync::atomic::AtomicU64>,
    pub conflicts: Arc<std::sync::atomic::AtomicU64>,
}

impl Observed {
    /// A store whose appends and reads yield first.
    pub(crate) fn interleaving() -> Self {
        Self { interleave: true, ..Self::default() }
    }

    async fn maybe_yield(&self) {
        if self.interleave {
            tokio::task::yield_now().await;
        }
    }
}

impl EventStore for Observed {
    async fn append(&self, request: tidemark::AppendRequest) -> tidemark::Result<AppendOutcome> {
        self.maybe_yield().await;
        let result = self.inner.append(request).await;
        if let Err(Error::Conflict { .. }) = result {
            self.conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }
    async fn read_stream(
        &self,
        id: &StreamId,
        from: StreamVersion,
        limit: usize,
    ) -> tidemark::Result<Vec<RecordedEvent>> {
        self.maybe_yield().await;
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.read_stream(id, from, limit).await
    }
    async fn read_log(&self, after: LogPosition, limit: usize) -> tidemark::Result<Vec<RecordedEvent>> {
        self.inner.read_log(after, limit).await
    }
    async fn wait_for_log(&self, after: LogPosition, timeout: std::time::Duration) -> tidemark::Result<bool> {
        self.inner.wait_for_log(after, timeout).await
    }
    async fn stream_version(&self, id: &StreamId) -> tidemark::Result<StreamVersion> {
        self.inner.stream_version(id).await
    }
    async fn log_head(&self) -> tidemark::Result<Option<LogPosition>> {
        self.inner.log_head().await
    }
    async fn command_outcome(&self, id: tidemark::CommandId) -> tidemark::Result<Option<AppendOutcome>> {
        self.inner.command_outcome(id).await
    }
    async fn load_snapshot(&self, id: &StreamId) -> tidemark::Result<Option<tidemark::Snapshot>> {
        self.inner.load_snapshot(id).await
    }
    async fn save_snapshot(&self, snapshot: tidemark::Snapshot) -> tidemark::Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
}

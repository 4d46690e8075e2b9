//! The command handler over the in-memory store: decisions, rejections, optimistic
//! concurrency, idempotent command ids, metadata, snapshots, and the given/when/then harness.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidemark::{
    Aggregate, AggregateTest, AppendOutcome, AppendRequest, CommandError, CommandHandler,
    CommandId, CommandOptions, Error, EventCodec, EventStore, ExpectedVersion, HandlerConfig,
    InMemoryEventStore, LogPosition, Metadata, RecordedEvent, Result, Snapshot, SnapshotPolicy,
    StreamId, StreamVersion,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// A wallet: opened once, never overdrawn.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credited {
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Debited {
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
pub enum WalletCommand {
    Open { owner: String, initial: i64 },
    Credit(i64),
    /// Two credits in one command: a command that records two events.
    CreditTwice(i64, i64),
    Debit(i64),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WalletError {
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
pub struct Wallet {
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

type Handler<S = InMemoryEventStore> = CommandHandler<Wallet, S>;

fn codec() -> Arc<EventCodec<WalletEvent>> {
    Arc::new(EventCodec::without_upcasters().unwrap())
}

fn handler() -> Handler {
    CommandHandler::new(InMemoryEventStore::new(), codec())
}

fn wallet() -> StreamId {
    StreamId::for_entity(Wallet::CATEGORY, Uuid::now_v7().simple()).unwrap()
}

fn open(initial: i64) -> WalletCommand {
    WalletCommand::Open { owner: "alice".into(), initial }
}

fn no_options() -> CommandOptions {
    CommandOptions::new()
}

async fn events<S: EventStore>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    tidemark::read_stream_to_end(store, stream, StreamVersion(1), 100).await.unwrap()
}

async fn decoded<S: EventStore>(h: &Handler<S>, stream: &StreamId) -> Vec<WalletEvent> {
    let stored = events(h.store(), stream).await;
    stored.iter().map(|e| h.codec().decode_event(e).unwrap()).collect()
}

async fn head<S: EventStore>(store: &S) -> Option<LogPosition> {
    store.log_head().await.unwrap()
}

fn credited(cents: i64) -> WalletEvent {
    Credited { cents }.into()
}

fn expect_conflict(
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

// ---------------------------------------------------------------------------------------
// Deciding and appending.

#[tokio::test]
async fn happy_path_appends_the_decided_events() {
    let h = handler();
    let id = wallet();
    let outcome = h.handle(&id, &open(50), &no_options()).await.unwrap();
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(0), StreamVersion(2)));
    assert_eq!((outcome.duplicate, outcome.command_id), (false, None));
    assert_eq!(outcome.last_position, head(h.store()).await);
    let opened = WalletEvent::from(Opened { owner: "alice".into() });
    assert_eq!(decoded(&h, &id).await, vec![opened.clone(), credited(50)]);

    let outcome = h.handle(&id, &WalletCommand::Debit(20), &no_options()).await.unwrap();
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(2), StreamVersion(3)));
    let loaded = h.load(&id).await.unwrap();
    assert_eq!(loaded.state, Wallet { open: true, owner: "alice".into(), balance: 30 });
    assert_eq!((loaded.version, loaded.stale_snapshot), (StreamVersion(3), false));
}

#[tokio::test]
async fn domain_rejection_appends_nothing() {
    let h = handler();
    let id = wallet();
    let rejected = h.handle(&id, &WalletCommand::Credit(5), &no_options()).await;
    assert!(matches!(rejected, Err(CommandError::Rejected(WalletError::NotOpen))));
    assert_eq!(h.store().stream_version(&id).await.unwrap(), StreamVersion::EMPTY);
    assert_eq!(head(h.store()).await, None);

    h.handle(&id, &open(10), &no_options()).await.unwrap();
    let before = head(h.store()).await;
    let command_id = CommandId::new();
    let options = CommandOptions::new().id(command_id);
    match h.handle(&id, &WalletCommand::Debit(11), &options).await {
        Err(CommandError::Rejected(e)) => {
            assert_eq!(e, WalletError::Insufficient { balance: 10, requested: 11 })
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(h.store().stream_version(&id).await.unwrap(), StreamVersion(2));
    assert_eq!(head(h.store()).await, before);
    // A rejected command is not recorded: its id stays free.
    assert_eq!(h.store().command_outcome(command_id).await.unwrap(), None);
}

#[tokio::test]
async fn long_streams_load_in_pages() {
    let mut config = HandlerConfig::default();
    config.read_page = 2;
    let h = handler().with_config(config);
    let id = wallet();
    h.handle(&id, &open(1), &no_options()).await.unwrap();
    for cents in 2..=6 {
        h.handle(&id, &WalletCommand::Credit(cents), &no_options()).await.unwrap();
    }
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.version, loaded.state.balance), (StreamVersion(7), 21));
}

// ---------------------------------------------------------------------------------------
// Optimistic concurrency.

#[tokio::test]
async fn stale_expected_version_is_a_conflict_with_exact_numbers() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(10), &no_options()).await.unwrap();
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap();
    let before = head(h.store()).await;

    let stale = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(2)));
    let result = h.handle(&id, &WalletCommand::Credit(5), &stale).await;
    expect_conflict(result, &id, ExpectedVersion::Exact(StreamVersion(2)), 3);
    let no_stream = CommandOptions::new().expect(ExpectedVersion::NoStream);
    let result = h.handle(&id, &WalletCommand::Credit(5), &no_stream).await;
    expect_conflict(result, &id, ExpectedVersion::NoStream, 3);
    assert_eq!(head(h.store()).await, before, "a conflict appends nothing");

    let fresh = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(3)));
    let outcome = h.handle(&id, &WalletCommand::Credit(5), &fresh).await.unwrap();
    assert_eq!(outcome.version, StreamVersion(4));

    let other = wallet();
    let exists = CommandOptions::new().expect(ExpectedVersion::StreamExists);
    let result = h.handle(&other, &open(1), &exists).await;
    expect_conflict(result, &other, ExpectedVersion::StreamExists, 0);
}

/// Delegates to the in-memory store but yields to the scheduler before every call, so
/// that tasks on one thread interleave between loading a stream and appending to it.
#[derive(Debug, Clone, Default)]
struct Interleaving {
    inner: InMemoryEventStore,
    conflicts: Arc<AtomicU64>,
}

impl EventStore for Interleaving {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        tokio::task::yield_now().await;
        let result = self.inner.append(request).await;
        if let Err(Error::Conflict { .. }) = result {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
    async fn read_stream(&self, id: &StreamId, from: StreamVersion, limit: usize) -> Result<Vec<RecordedEvent>> {
        tokio::task::yield_now().await;
        self.inner.read_stream(id, from, limit).await
    }
    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>> {
        self.inner.read_log(after, limit).await
    }
    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool> {
        self.inner.wait_for_log(after, timeout).await
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
        self.inner.save_snapshot(snapshot).await
    }
}

/// Runs `tasks` concurrent credits of 1..=tasks cents on one open wallet.
async fn race_credits(
    retries: u32,
    tasks: i64,
) -> (Arc<Handler<Interleaving>>, StreamId, Vec<Result<AppendOutcome, CommandError<WalletError>>>) {
    let mut config = HandlerConfig::default();
    config.conflict_retries = retries;
    let h = Arc::new(CommandHandler::new(Interleaving::default(), codec()).with_config(config));
    let id = wallet();
    h.handle(&id, &open(0), &no_options()).await.unwrap();
    let spawned: Vec<_> = (1..=tasks)
        .map(|cents| {
            let (h, id) = (h.clone(), id.clone());
            tokio::spawn(async move { h.handle(&id, &WalletCommand::Credit(cents), &no_options()).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in spawned {
        results.push(task.await.unwrap());
    }
    (h, id, results)
}

#[tokio::test]
async fn concurrent_commands_on_one_stream_all_succeed_with_distinct_versions() {
    let tasks = 20;
    let (h, id, results) = race_credits(64, tasks).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.expect("retried until accepted")).collect();
    let versions: BTreeSet<u64> = outcomes.iter().map(|o| o.version.0).collect();
    assert_eq!(versions, (2..=tasks as u64 + 1).collect(), "one distinct version per command");
    assert!(outcomes.iter().all(|o| o.previous_version.0 + 1 == o.version.0));
    assert!(h.store().conflicts.load(Ordering::Relaxed) > 0, "the tasks did race");
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.version.0, loaded.state.balance), (tasks as u64 + 1, tasks * (tasks + 1) / 2));
}

#[tokio::test]
async fn without_retries_racing_commands_fail_with_a_conflict() {
    let (h, id, results) = race_credits(0, 10).await;
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(CommandError::Store(Error::Conflict { .. }))))
        .count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(conflicts > 0, "a lost race is reported when retries are off");
    assert_eq!(conflicts + accepted, 10);
    assert_eq!(h.store().stream_version(&id).await.unwrap().0, 1 + accepted as u64);
}

// ---------------------------------------------------------------------------------------
// Idempotent command ids.

#[tokio::test]
async fn same_command_id_twice_returns_the_first_outcome_and_appends_nothing() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(10), &no_options()).await.unwrap();
    let options = CommandOptions::new().id(CommandId::new());
    let first = h.handle(&id, &WalletCommand::Credit(7), &options).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.command_id, options.command_id);
    let before = head(h.store()).await;

    let second = h.handle(&id, &WalletCommand::Credit(7), &options).await.unwrap();
    assert_eq!(second, AppendOutcome { duplicate: true, ..first.clone() });
    assert_eq!(head(h.store()).await, before);
    assert_eq!(h.load(&id).await.unwrap().state.balance, 17);
}

#[tokio::test]
async fn duplicate_is_recognised_even_when_the_domain_would_now_reject_it() {
    let h = handler();
    let id = wallet();
    let open_options = CommandOptions::new().id(CommandId::new());
    let opened = h.handle(&id, &open(30), &open_options).await.unwrap();
    let again = h.handle(&id, &open(30), &open_options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..opened });

    let drain = CommandOptions::new().id(CommandId::new());
    let drained = h.handle(&id, &WalletCommand::Debit(30), &drain).await.unwrap();
    let before = head(h.store()).await;
    // Replaying the drain would overdraw the wallet now; it is recognised instead.
    let again = h.handle(&id, &WalletCommand::Debit(30), &drain).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..drained });
    assert_eq!(head(h.store()).await, before);
}

#[tokio::test]
async fn duplicate_is_recognised_when_its_expected_version_is_now_stale() {
    let h = handler();
    let id = wallet();
    let options = CommandOptions::new().id(CommandId::new()).expect(ExpectedVersion::NoStream);
    let first = h.handle(&id, &open(1), &options).await.unwrap();
    let again = h.handle(&id, &open(1), &options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..first });
}

#[tokio::test]
async fn a_command_id_reused_on_another_stream_returns_the_first_outcome() {
    let h = handler();
    let (a, b) = (wallet(), wallet());
    let options = CommandOptions::new().id(CommandId::new());
    let first = h.handle(&a, &open(5), &options).await.unwrap();
    let again = h.handle(&b, &open(5), &options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..first });
    assert_eq!(h.store().stream_version(&b).await.unwrap(), StreamVersion::EMPTY);
}

// ---------------------------------------------------------------------------------------
// Metadata.

#[tokio::test]
async fn metadata_is_copied_onto_every_event_with_ids_defaulting_to_the_command() {
    let h = handler();
    let id = wallet();
    let command_id = CommandId::new();
    let metadata =
        Metadata::new().with_user("bob").with_tenant("acme").with_header("ip", "10.0.0.1").with_header("via", "api");
    let options = CommandOptions::new().id(command_id).metadata(metadata.clone());
    h.handle(&id, &open(5), &options).await.unwrap();
    let stored = events(h.store(), &id).await;
    assert_eq!(stored.len(), 2);
    let expected = metadata.with_correlation_id(command_id.0).with_causation_id(command_id.0);
    for event in &stored {
        assert_eq!(event.metadata, expected);
    }
}

#[tokio::test]
async fn a_given_correlation_id_is_kept() {
    let h = handler();
    let id = wallet();
    let (command_id, correlation) = (CommandId::new(), Uuid::now_v7());
    let options = CommandOptions::new().id(command_id).metadata(Metadata::new().with_correlation_id(correlation));
    h.handle(&id, &open(5), &options).await.unwrap();
    for event in events(h.store(), &id).await {
        assert_eq!(event.metadata.correlation_id, Some(correlation));
        assert_eq!(event.metadata.causation_id, Some(command_id.0));
    }
}

#[tokio::test]
async fn without_a_command_id_each_command_gets_its_own_origin_id() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(5), &no_options()).await.unwrap();
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap();
    let stored = events(h.store(), &id).await;
    let origin = |e: &RecordedEvent| (e.metadata.correlation_id, e.metadata.causation_id);
    let (first, second, third) = (origin(&stored[0]), origin(&stored[1]), origin(&stored[2]));
    assert!(first.0.is_some() && first.0 == first.1, "correlation = causation = the command's id");
    assert_eq!(first, second, "events of one command share it");
    assert_ne!(first, third, "another command gets another id");
}

// ---------------------------------------------------------------------------------------
// Snapshots.

fn snapshotting(every: u64, schema: u32) -> Handler {
    handler().with_snapshots(SnapshotPolicy::every(every, schema))
}

async fn snapshot_version(h: &Handler, id: &StreamId) -> Option<u64> {
    h.store().load_snapshot(id).await.unwrap().map(|s| s.stream_version.0)
}

#[tokio::test]
async fn snapshots_are_saved_when_a_command_crosses_a_multiple_of_every() {
    let h = snapshotting(3, 1);
    let id = wallet();
    h.handle(&id, &open(0), &no_options()).await.unwrap(); // v1
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap(); // v2
    assert_eq!(snapshot_version(&h, &id).await, None);
    h.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3
    let snapshot = h.store().load_snapshot(&id).await.unwrap().expect("a snapshot at v3");
    let state = Wallet { open: true, owner: "alice".into(), balance: 3 };
    assert_eq!((snapshot.stream_version, snapshot.schema_version), (StreamVersion(3), 1));
    assert_eq!(snapshot.state, serde_json::to_value(&state).unwrap());

    h.handle(&id, &WalletCommand::Credit(4), &no_options()).await.unwrap(); // v4
    h.handle(&id, &WalletCommand::Credit(5), &no_options()).await.unwrap(); // v5
    assert_eq!(snapshot_version(&h, &id).await, Some(3));
    // Two events, v6 and v7: the command crosses 6, the snapshot holds all of it.
    h.handle(&id, &WalletCommand::CreditTwice(6, 7), &no_options()).await.unwrap();
    let snapshot = h.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!(snapshot.stream_version, StreamVersion(7));
    assert_eq!(snapshot.state["balance"], 25);
}

async fn tamper(h: &Handler, id: &StreamId, schema_version: u32, version: u64, state: serde_json::Value) {
    let snapshot = Snapshot {
        stream_id: id.clone(),
        schema_version,
        stream_version: StreamVersion(version),
        state,
        taken_at: chrono::Utc::now(),
    };
    h.store().save_snapshot(snapshot).await.unwrap();
}

fn marker(balance: i64) -> serde_json::Value {
    serde_json::to_value(Wallet { open: true, owner: "marker".into(), balance }).unwrap()
}

#[tokio::test]
async fn load_starts_from_the_snapshot_and_reads_only_later_events() {
    let h = snapshotting(3, 1);
    let id = wallet();
    h.handle(&id, &open(1), &no_options()).await.unwrap(); // v2
    h.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3, snapshot
    assert_eq!(snapshot_version(&h, &id).await, Some(3));
    tamper(&h, &id, 1, 3, marker(1_000_000)).await;
    h.handle(&id, &WalletCommand::Credit(5), &no_options()).await.unwrap(); // v4

    let loaded = h.load(&id).await.unwrap();
    let expected = Wallet { open: true, owner: "marker".into(), balance: 1_000_005 };
    assert_eq!((loaded.state, loaded.version, loaded.stale_snapshot), (expected, StreamVersion(4), false));
    // The same store without snapshots replays every event.
    let plain = CommandHandler::<Wallet, _>::new(h.store().clone(), codec());
    assert_eq!(plain.load(&id).await.unwrap().state.balance, 8);
}

#[tokio::test]
async fn snapshot_of_another_schema_version_is_ignored_then_replaced() {
    let old = snapshotting(3, 1);
    let id = wallet();
    old.handle(&id, &open(1), &no_options()).await.unwrap(); // v2
    old.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3, snapshot v1
    old.handle(&id, &WalletCommand::Credit(3), &no_options()).await.unwrap(); // v4
    tamper(&old, &id, 1, 3, marker(1_000_000)).await;

    let new: Handler = CommandHandler::new(old.store().clone(), codec()).with_snapshots(SnapshotPolicy::every(3, 2));
    let loaded = new.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version, loaded.stale_snapshot), (6, StreamVersion(4), true));

    // v5 crosses no multiple of 3, but the stale snapshot is replaced anyway.
    new.handle(&id, &WalletCommand::Credit(4), &no_options()).await.unwrap();
    let snapshot = new.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!((snapshot.schema_version, snapshot.stream_version), (2, StreamVersion(5)));
    assert_eq!(snapshot.state["balance"], 10);
    let loaded = new.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.stale_snapshot), (10, false));
}

#[tokio::test]
async fn undecodable_snapshot_is_ignored_then_replaced() {
    let h = snapshotting(10, 1);
    let id = wallet();
    h.handle(&id, &open(4), &no_options()).await.unwrap(); // v2
    tamper(&h, &id, 1, 2, serde_json::json!("not a wallet")).await;
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.stale_snapshot), (4, true));
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap(); // v3
    let snapshot = h.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!((snapshot.stream_version, snapshot.state["balance"].clone()), (StreamVersion(3), 5.into()));
}

// ---------------------------------------------------------------------------------------
// Given / when / then.

fn opened(owner: &str) -> WalletEvent {
    Opened { owner: owner.into() }.into()
}

#[test]
fn given_when_then_decides_and_returns_the_new_state() {
    let state = AggregateTest::<Wallet>::given([opened("carol"), credited(10)])
        .when(WalletCommand::Debit(4))
        .then([Debited { cents: 4 }.into()]);
    assert_eq!(state, Wallet { open: true, owner: "carol".into(), balance: 6 });
    AggregateTest::<Wallet>::given_no_events()
        .when(open(3))
        .then([opened("alice"), credited(3)]);
}

#[test]
fn given_when_then_error_checks_the_rejection() {
    AggregateTest::<Wallet>::given([opened("carol"), credited(10)])
        .when(WalletCommand::Debit(11))
        .then_error(WalletError::Insufficient { balance: 10, requested: 11 });
    AggregateTest::<Wallet>::given_no_events()
        .when(WalletCommand::Credit(1))
        .then_error(WalletError::NotOpen);
}

#[test]
#[should_panic(expected = "decided other events")]
fn then_fails_on_other_events() {
    AggregateTest::<Wallet>::given([opened("carol")])
        .when(WalletCommand::Credit(2))
        .then([credited(3)]);
}

#[test]
#[should_panic(expected = "was rejected")]
fn then_fails_on_a_rejection() {
    AggregateTest::<Wallet>::given_no_events()
        .when(WalletCommand::Credit(2))
        .then([credited(2)]);
}

#[test]
#[should_panic(expected = "rejected with another error")]
fn then_error_fails_on_another_error() {
    AggregateTest::<Wallet>::given_no_events()
        .when(WalletCommand::Credit(2))
        .then_error(WalletError::NotPositive);
}

#[test]
#[should_panic(expected = "expected rejection")]
fn then_error_fails_when_the_command_is_accepted() {
    AggregateTest::<Wallet>::given([opened("carol")])
        .when(WalletCommand::Credit(2))
        .then_error(WalletError::NotPositive);
}

//! Property: random command sequences over a few bank accounts give the same outcomes,
//! the same events (types, payloads, versions, per-stream and log order) and the same
//! final states on the in-memory and the PostgreSQL store.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use tidemark::{
    read_stream_to_end, AppendOutcome, CommandError, CommandHandler, CommandId, CommandOptions, Error, EventStore,
    ExpectedVersion, InMemoryEventStore, LogPosition, Metadata, SnapshotPolicy, StreamId, StreamVersion,
};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;
use tidemark_tests::bank::{account_id, any_command, codec, Account, BankCommand, BankError};
use tidemark_tests::contract::settle;
use tokio::runtime::Runtime;

const ACCOUNTS: usize = 3;
const COMMAND_IDS: usize = 4;

/// One command of a sequence.
#[derive(Debug, Clone)]
struct Step {
    account: usize,
    command: BankCommand,
    /// Index into the case's command ids: repeats make duplicates.
    command_id: Option<usize>,
    expected: Option<u64>,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step =
        (0..ACCOUNTS, any_command(), prop::option::weighted(0.3, 0..COMMAND_IDS), prop::option::weighted(0.1, 0u64..6))
            .prop_map(|(account, command, command_id, expected)| Step { account, command, command_id, expected });
    prop::collection::vec(step, 0..40)
}

/// What a command did, in terms that do not depend on the store.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Appended {
        stream: StreamId,
        command_id: Option<CommandId>,
        previous: StreamVersion,
        version: StreamVersion,
        duplicate: bool,
        has_position: bool,
    },
    Rejected(BankError),
    Conflict {
        expected: ExpectedVersion,
        actual: StreamVersion,
    },
}

fn seen(result: Result<AppendOutcome, CommandError<BankError>>) -> Result<Seen, TestCaseError> {
    Ok(match result {
        Ok(o) => Seen::Appended {
            stream: o.stream_id,
            command_id: o.command_id,
            previous: o.previous_version,
            version: o.version,
            duplicate: o.duplicate,
            has_position: o.last_position.is_some(),
        },
        Err(CommandError::Rejected(e)) => Seen::Rejected(e),
        Err(CommandError::Store(Error::Conflict { expected, actual, .. })) => Seen::Conflict { expected, actual },
        Err(other) => return Err(TestCaseError::fail(format!("command failed: {other}"))),
    })
}

/// A stored event in store-independent terms.
type Stored = (StreamId, StreamVersion, String, u32, Value, Option<String>);

/// Everything one store ended up with after a case.
#[derive(Debug, PartialEq)]
struct Observed {
    outcomes: Vec<Seen>,
    streams: Vec<Vec<Stored>>,
    log: Vec<Stored>,
    states: Vec<(Account, StreamVersion)>,
}

fn stored(e: &tidemark::RecordedEvent) -> Stored {
    let payload = serde_json::from_str(e.payload.get()).expect("stored payloads are JSON");
    let user = e.metadata.user.clone();
    (e.stream_id.clone(), e.stream_version, e.event_type.clone(), e.schema_version, payload, user)
}

async fn run<S: EventStore>(
    store: S,
    accounts: &[StreamId],
    command_ids: &[CommandId],
    steps: &[Step],
) -> Result<Observed, TestCaseError> {
    let start = store.log_head().await?.unwrap_or(LogPosition::START);
    let handler = CommandHandler::<Account, S>::new(store, codec()).with_snapshots(SnapshotPolicy::every(4, 1));
    let (mut outcomes, mut last) = (Vec::new(), None);
    for step in steps {
        let mut options = CommandOptions::new().metadata(Metadata::new().with_user("prop"));
        if let Some(i) = step.command_id {
            options = options.id(command_ids[i]);
        }
        if let Some(v) = step.expected {
            options = options.expect(ExpectedVersion::Exact(StreamVersion(v)));
        }
        let result = handler.handle(&accounts[step.account], &step.command, &options).await;
        if let Ok(outcome) = &result {
            last = last.max(outcome.last_position);
        }
        outcomes.push(seen(result)?);
    }
    let store = handler.store();
    let mut streams = Vec::new();
    let mut states = Vec::new();
    for id in accounts {
        let events = read_stream_to_end(store, id, StreamVersion(1), 7).await?;
        streams.push(events.iter().map(stored).collect());
        let loaded = handler.load(id).await?;
        states.push((loaded.state, loaded.version));
    }
    settle(store, last).await;
    let log = store.read_log(start, 10_000).await?.iter().map(stored).collect();
    Ok(Observed { outcomes, streams, log, states })
}

#[test]
fn in_memory_and_postgres_agree_on_random_command_sequences() {
    let rt = Runtime::new().expect("a tokio runtime");
    let schema = rt.block_on(TestSchema::new());
    let pg = rt.block_on(async {
        let config = PgStoreConfig::default().schema(schema.name());
        let store = PgEventStore::connect(schema.url(), config).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    });
    let config = Config { cases: 48, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&steps(), |steps| {
        rt.block_on(async {
            // Fresh stream and command ids per case: the PostgreSQL schema is shared.
            let accounts: Vec<_> = (0..ACCOUNTS).map(|_| account_id("eq")).collect();
            let command_ids: Vec<_> = (0..COMMAND_IDS).map(|_| CommandId::new()).collect();
            let memory = run(InMemoryEventStore::new(), &accounts, &command_ids, &steps).await?;
            let postgres = run(pg.clone(), &accounts, &command_ids, &steps).await?;
            prop_assert_eq!(&memory.outcomes, &postgres.outcomes, "command outcomes differ");
            prop_assert_eq!(&memory.streams, &postgres.streams, "stored streams differ");
            prop_assert_eq!(&memory.log, &postgres.log, "log order differs");
            prop_assert_eq!(&memory.states, &postgres.states, "final states differ");
            Ok(())
        })
    });
    drop(pg);
    if let Err(e) = result {
        panic!("{e}");
    }
}

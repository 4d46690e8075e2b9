//! Shared set-up of the runtime's tests: a tally projection written against the document
//! API (so it runs on PostgreSQL and in memory), events over many streams, and the read
//! model a fresh replay of the store gives.
#![allow(dead_code)]

pub(crate) mod deployment;
pub(crate) mod fragile;
pub(crate) mod nats;
pub(crate) mod scripted;
pub(crate) mod sql_fold;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tidemark::{
    AppendOutcome, AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, StreamId,
};
use tidemark_projections::{ApplyError, DocumentReader, DocumentTx, Projection, ReadModels};

/// How long any condition in these tests may take to come true.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Deposited {
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Withdrawn {
    pub amount: i64,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum LedgerEvent {
        Deposited(Deposited) = ("Deposited", 1),
        Withdrawn(Withdrawn) = ("Withdrawn", 1),
    }
}

/// Per stream: events applied, balance, last version applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub events: u64,
    pub balance: i64,
    pub version: u64,
}

/// Keeps a [`Tally`] per stream in the `tally` collection. It refuses an event whose
/// stream version does not follow the last one it saw of the stream: applying out of
/// order (or twice) fails loudly instead of drifting.
#[derive(Debug)]
pub(crate) struct TallyProjection {
    pub name: String,
    version: u32,
    codec: EventCodec<LedgerEvent>,
}

impl TallyProjection {
    pub(crate) fn new(name: &str) -> Self {
        Self::versioned(name, 1)
    }

    pub(crate) fn versioned(name: &str, version: u32) -> Self {
        Self { name: name.to_owned(), version, codec: EventCodec::without_upcasters().expect("codec") }
    }

    pub(crate) fn collection(&self) -> String {
        format!("tally-{}", self.name)
    }
}

impl<R> Projection<R> for TallyProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    /// Records which version of the code built the read model.
    async fn setup(&self, tx: &mut R::Tx) -> Result<(), ApplyError> {
        tx.put_as("meta", "version", &self.version).await
    }

    async fn forget_stream(&self, tx: &mut R::Tx, stream: &tidemark::StreamId) -> Result<(), ApplyError> {
        tx.delete(&self.collection(), stream.as_str()).await
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let collection = self.collection();
        let key = event.stream_id.as_str();
        let mut tally: Tally = tx.get_as(&collection, key).await?.unwrap_or_default();
        let version = event.stream_version.0;
        if tally.version >= version {
            return Err(format!("{key} version {version} applied again (last {})", tally.version).into());
        }
        tally.events += 1;
        tally.version = version;
        tally.balance += match &event.event {
            LedgerEvent::Deposited(d) => d.amount,
            LedgerEvent::Withdrawn(w) => -w.amount,
        };
        tx.put_as(&collection, key, &tally).await
    }
}

/// The tallies a fresh replay of `events` gives (events of other types count as versions
/// only).
pub(crate) fn replay(events: &[RecordedEvent]) -> BTreeMap<String, Tally> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for event in events {
        let amount: serde_json::Value = serde_json::from_str(event.payload.get()).expect("json");
        let amount = amount["amount"].as_i64().unwrap_or(0);
        let delta = match event.event_type.as_str() {
            "Deposited" => amount,
            "Withdrawn" => -amount,
            _ => continue,
        };
        let tally = tallies.entry(event.stream_id.to_string()).or_default();
        tally.events += 1;
        tally.balance += delta;
        tally.version = event.stream_version.0;
    }
    tallies
}

/// The tallies in the read model.
pub(crate) async fn tallies<D: DocumentReader>(documents: &D, projection: &TallyProjection) -> BTreeMap<String, Tally> {
    let all =
        documents.documents(&projection.name, &projection.collection(), "", 1_000_000).await.expect("read documents");
    all.into_iter().map(|(k, v)| (k, serde_json::from_value(v).expect("tally"))).collect()
}

/// The events of one append: `count` events of mixed types (every fifth a `Noted` at
/// schema version 2, which the projection does not handle).
pub(crate) fn events(stream: usize, from: usize, count: usize) -> Vec<NewEvent> {
    (from..from + count)
        .map(|i| {
            let amount = (stream * 31 + i * 7) % 100 + 1;
            let event_type = match i % 5 {
                4 => "Noted",
                3 => "Withdrawn",
                _ => "Deposited",
            };
            let payload = RawValue::from_string(format!(r#"{{"amount":{amount}}}"#)).expect("json");
            NewEvent::new(event_type, if event_type == "Noted" { 2 } else { 1 }, payload)
        })
        .collect()
}

pub(crate) fn stream(n: usize) -> StreamId {
    StreamId::for_entity("account", n).expect("stream id")
}

/// Appends `rounds` appends of `per_append` events to each of `streams` streams (new or
/// not), 8 at a time, interleaving streams. Returns the last outcome of each stream.
pub(crate) async fn append_rounds<S: EventStore + Clone + 'static>(
    store: &S,
    streams: usize,
    rounds: usize,
    per_append: usize,
) -> Vec<AppendOutcome> {
    let mut last = Vec::new();
    for round in 0..rounds {
        let appends = futures_util::stream::iter(0..streams).map(|n| {
            let store = store.clone();
            async move {
                let request =
                    AppendRequest::new(stream(n), ExpectedVersion::Any, events(n, round * per_append, per_append));
                store.append(request).await.expect("append")
            }
        });
        last = appends.buffer_unordered(8).collect().await;
    }
    last
}

/// The whole log through `through`, waiting for the readable horizon to reach it.
pub(crate) async fn read_log<S: EventStore>(store: &S, through: LogPosition) -> Vec<RecordedEvent> {
    let read = tidemark::read_log_through(store, through, 5000, DEADLINE).await.expect("read log");
    read.unwrap_or_else(|| panic!("the log did not become readable through {through}"))
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
pub(crate) async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tidemark_testkit::wait_until(what, DEADLINE, condition).await;
}

/// Logs to the test output (`RUST_LOG` to change the filter).
pub(crate) fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "tidemark_projections=info,tidemark_nats=warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// The version of the code that built the projection's read model (`None`: nothing built).
pub(crate) async fn built_by<D: DocumentReader>(documents: &D, projection: &TallyProjection) -> Option<u32> {
    let found = documents.document(&projection.name, "meta", "version").await.expect("read document");
    found.map(|v| serde_json::from_value(v).expect("a version"))
}

/// Waits until one session of the test's database is blocked on an advisory lock (a batch
/// waiting for its partition lock).
pub(crate) async fn one_waits_for_an_advisory_lock(pool: &sqlx::PgPool) {
    let blocked = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND wait_event = 'advisory'";
    wait_until("a batch waits for its partition lock", || async {
        let n: i64 = sqlx::query_scalar(blocked).fetch_one(pool).await.expect("pg_stat_activity");
        n == 1
    })
    .await;
}

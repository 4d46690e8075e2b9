//! After the faults: what the store holds, what JetStream holds, what the read model holds and
//! what a rebuild gives, compared event by event. Every check counts instead of stopping at
//! the first problem, so a failing run reports the whole damage.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Serialize;
use tidemark::{LogPosition, RecordedEvent};
use tidemark_nats::EventHeaders;
use tidemark_postgres::PgEventStore;
use tidemark_projections::{DocumentReader, RebuildOptions};
use tokio::time::Instant;

use super::deployment::CheckRunner;
use super::ledger::{Applied, APPLIED, LEDGER};

/// What the checks found. A run is clean when every count but the totals is zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Events in the store.
    pub events: u64,
    /// Streams in the store.
    pub streams: u64,
    /// Appends (batches of events written together) whose events are not all stored.
    pub partial_appends: u64,
    /// Distinct stored events found in JetStream.
    pub published: u64,
    /// Stored events JetStream does not hold.
    pub lost_in_publish: u64,
    /// JetStream messages carrying an event id already seen.
    pub published_twice: u64,
    /// JetStream messages whose event id is not in the store.
    pub published_unknown: u64,
    /// Messages of a stream that JetStream holds before an earlier version of that stream.
    pub published_out_of_order: u64,
    /// Versions the read model should hold but does not.
    pub lost_in_apply: u64,
    /// Versions the read model applied more than once.
    pub applied_twice: u64,
    /// Places where the read model applied a version after a later one.
    pub applied_out_of_order: u64,
    /// Streams holding an injected poison event.
    pub poison_streams: u64,
    /// Poison streams that are not parked from their poison event on.
    pub poison_not_parked: u64,
    /// Streams parked without a poison event.
    pub parked_without_poison: u64,
    /// Streams whose rebuilt read model differs from the live one.
    pub rebuild_differs: u64,
    /// Replicas of a clustered stream whose own copy differs from the store (read through a
    /// consumer placed on each).
    pub replica_differs: u64,
    /// Times the status (the lag `projections status` reports) said everything up to a
    /// head was taken in while the ledger lacked a version up to it.
    pub status_overclaimed: u64,
    /// Streams `projections audit` found behind, missing or ahead once everything was
    /// taken in.
    pub audit_findings: u64,
    /// What the problems above were, a line each (the first few of each kind).
    #[serde(skip)]
    pub details: Vec<String>,
}

impl Counts {
    /// Whether nothing was lost, doubled, reordered, wrongly parked or different after a rebuild.
    pub fn clean(&self) -> bool {
        let Self { events: _, streams: _, published: _, poison_streams: _, .. } = self;
        [
            self.partial_appends,
            self.lost_in_publish,
            self.published_twice,
            self.published_unknown,
            self.published_out_of_order,
            self.lost_in_apply,
            self.applied_twice,
            self.applied_out_of_order,
            self.poison_not_parked,
            self.parked_without_poison,
            self.rebuild_differs,
            self.status_overclaimed,
            self.audit_findings,
            self.replica_differs,
        ]
        .iter()
        .all(|count| *count == 0)
    }
}

/// Every committed event, in log order: reads the log until it reaches the last committed
/// event of `schema`'s table (`log_head` is the readable head, which trails commits while older
/// transactions are still open), waiting for the horizon up to a minute.
pub async fn read_store(store: &PgEventStore, schema: &str) -> Vec<RecordedEvent> {
    let sql = format!("SELECT transaction_id, sequence FROM \"{schema}\".events ORDER BY 1 DESC, 2 DESC LIMIT 1");
    let last: Option<(i64, i64)> = sqlx::query_as(&sql).fetch_optional(store.pool()).await.expect("the last event");
    let Some((xid, sequence)) = last else { return Vec::new() };
    let last = LogPosition::new(xid.unsigned_abs(), sequence.unsigned_abs());
    let read = tidemark::read_log_through(store, last, 5000, Duration::from_secs(60)).await;
    read.expect("reading the store's log").unwrap_or_else(|| panic!("the log stayed short of {last:?} for a minute"))
}

/// Polls `condition` every 100 ms until it holds or `deadline` passes; says which.
pub async fn eventually<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One message of the JetStream stream, in stream order.
#[derive(Debug, Clone)]
pub struct Published {
    /// The event id header.
    pub event_id: String,
    /// The stream id header.
    pub stream_id: String,
    /// The stream version header.
    pub stream_version: u64,
}

/// How many messages the JetStream stream holds.
pub async fn stream_messages(jetstream: &async_nats::jetstream::Context, stream: &str) -> Option<u64> {
    let mut stream = jetstream.get_stream(stream).await.ok()?;
    stream.info().await.ok().map(|info| info.state.messages)
}

/// Every message of the stream, read by an ephemeral consumer that acknowledges nothing.
pub async fn read_jetstream(jetstream: &async_nats::jetstream::Context, stream: &str) -> Vec<Published> {
    read_jetstream_on(jetstream, stream).await.1
}

/// The stream as each of its replicas holds it: an ephemeral consumer (one replica) reads
/// the copy of the server it is placed on, so consumers are made until every server of
/// `replicas` was met (a dozen tries at most). Server name → messages.
pub async fn read_replicas(
    jetstream: &async_nats::jetstream::Context,
    stream: &str,
    replicas: usize,
) -> BTreeMap<String, Vec<Published>> {
    let mut copies = BTreeMap::new();
    for _ in 0..12 {
        if copies.len() >= replicas {
            break;
        }
        let (server, messages) = read_jetstream_on(jetstream, stream).await;
        copies.entry(server.unwrap_or_default()).or_insert(messages);
    }
    copies
}

/// Every message of the stream through one new ephemeral consumer, and the server the
/// consumer was placed on (in a cluster).
async fn read_jetstream_on(
    jetstream: &async_nats::jetstream::Context,
    stream: &str,
) -> (Option<String>, Vec<Published>) {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let total = stream_messages(jetstream, stream).await.unwrap_or(0);
    let handle = jetstream.get_stream(stream).await.expect("the JetStream stream exists");
    let consumer = handle
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            num_replicas: 1,
            ..pull::Config::default()
        })
        .await
        .expect("an ephemeral consumer");
    let server = consumer.cached_info().cluster.as_ref().and_then(|c| c.leader.clone());
    let mut out = Vec::new();
    let mut idle = 0;
    while (out.len() as u64) < total && idle < 20 {
        let mut batch = consumer
            .fetch()
            .max_messages(2000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetching messages");
        let before = out.len();
        while let Some(Ok(message)) = batch.next().await {
            match EventHeaders::parse(message.headers.as_ref()) {
                Ok(headers) => out.push(Published {
                    event_id: headers.event_id.to_string(),
                    stream_id: headers.stream_id.to_string(),
                    stream_version: headers.stream_version.0,
                }),
                Err(e) => out.push(Published {
                    event_id: format!("unreadable: {e}"),
                    stream_id: String::new(),
                    stream_version: 0,
                }),
            }
        }
        idle = if out.len() == before { idle + 1 } else { 0 };
    }
    let _ = handle.delete_consumer(&consumer.cached_info().name).await;
    (server, out)
}

/// Counts the replicas whose copy is not the store's events once each, in order: a
/// replica that lost acknowledged messages, holds some twice or out of order.
pub fn check_replicas(events: &[RecordedEvent], copies: &BTreeMap<String, Vec<Published>>, counts: &mut Counts) {
    for (server, copy) in copies {
        let mut probe = Counts::default();
        check_published(events, copy, &mut probe);
        if !probe.clean() {
            counts.replica_differs += 1;
            counts.details.push(format!(
                "replica {server}: {} lost, {} twice, {} out of order, {} unknown",
                probe.lost_in_publish, probe.published_twice, probe.published_out_of_order, probe.published_unknown
            ));
        }
    }
}

/// Compares the store with JetStream.
pub fn check_published(events: &[RecordedEvent], published: &[Published], counts: &mut Counts) {
    let stored: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    let mut seen = HashSet::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for message in published {
        if !stored.contains(&message.event_id) {
            if counts.published_unknown < 3 {
                counts.details.push(format!("a message of no stored event: {message:?}"));
            }
            counts.published_unknown += 1;
        }
        if !seen.insert(message.event_id.clone()) {
            counts.published_twice += 1;
            continue;
        }
        let previous = last.entry(message.stream_id.as_str()).or_insert(0);
        if message.stream_version <= *previous {
            counts.published_out_of_order += 1;
        }
        *previous = (*previous).max(message.stream_version);
    }
    counts.published = stored.iter().filter(|id| seen.contains(*id)).count() as u64;
    counts.lost_in_publish = stored.len() as u64 - counts.published;
}

/// Per stream: its last version, and the version of its first poison event if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFacts {
    /// The stream's last version.
    pub head: u64,
    /// The version of the first poison event.
    pub poison_at: Option<u64>,
}

/// Facts per stream, and the partial-append count, from the stored events.
pub fn stream_facts(events: &[RecordedEvent], counts: &mut Counts) -> BTreeMap<String, StreamFacts> {
    let mut facts: BTreeMap<String, StreamFacts> = BTreeMap::new();
    let mut batches: HashMap<String, (u64, u64)> = HashMap::new();
    for event in events {
        let fact = facts.entry(event.stream_id.to_string()).or_default();
        fact.head = fact.head.max(event.stream_version.0);
        if event.event_type == "Poisoned" && fact.poison_at.is_none() {
            fact.poison_at = Some(event.stream_version.0);
        }
        let payload: serde_json::Value = serde_json::from_str(event.payload.get()).unwrap_or_default();
        if let (Some(batch), Some(of)) = (payload["batch"].as_str(), payload["of"].as_u64()) {
            let entry = batches.entry(batch.to_owned()).or_insert((0, of));
            entry.0 += 1;
        }
    }
    counts.events = events.len() as u64;
    counts.streams = facts.len() as u64;
    counts.partial_appends = batches.values().filter(|(found, of)| found != of).count() as u64;
    counts.poison_streams = facts.values().filter(|f| f.poison_at.is_some()).count() as u64;
    facts
}

/// The ledger read model: stream id → what was applied.
pub async fn ledger(runner: &CheckRunner) -> BTreeMap<String, Applied> {
    let documents = runner.read_models().documents(LEDGER, APPLIED, "", 10_000_000).await.expect("reading the ledger");
    documents
        .into_iter()
        .map(|(key, value)| (key, serde_json::from_value(value).expect("an Applied document")))
        .collect()
}

/// The versions of a stream the ledger should hold: all of them, or those before its poison.
fn expected_versions(fact: &StreamFacts) -> u64 {
    fact.poison_at.map_or(fact.head, |at| at - 1)
}

/// Whether the ledger has caught up with every stream (as far as poison lets it).
pub fn caught_up(facts: &BTreeMap<String, StreamFacts>, ledger: &BTreeMap<String, Applied>) -> bool {
    facts.iter().all(|(stream, fact)| {
        let applied = ledger.get(stream).map_or(0, |a| a.versions.len() as u64);
        applied >= expected_versions(fact)
    })
}

/// Compares the ledger with the store, and the dead letters with the injected poison.
pub async fn check_applied(
    facts: &BTreeMap<String, StreamFacts>,
    ledger: &BTreeMap<String, Applied>,
    runner: &CheckRunner,
    counts: &mut Counts,
) {
    for (stream, fact) in facts {
        let empty = Applied::default();
        let applied = ledger.get(stream).unwrap_or(&empty);
        let distinct: BTreeSet<u64> = applied.versions.iter().copied().collect();
        let expected = expected_versions(fact);
        let in_order = applied.versions.iter().copied().eq(1..=expected);
        if !in_order && counts.details.len() < 10 {
            let shown: Vec<u64> = applied.versions.iter().copied().take(400).collect();
            counts.details.push(format!("{stream}: expected 1..={expected}, applied {shown:?}"));
        }
        counts.applied_twice += (applied.versions.len() - distinct.len()) as u64;
        counts.lost_in_apply += (1..=expected).filter(|v| !distinct.contains(v)).count() as u64;
        counts.applied_out_of_order += applied.versions.windows(2).filter(|pair| pair[1] <= pair[0]).count() as u64;
    }
    let letters = runner.dead_letters().await.expect("reading dead letters");
    let mut parked: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for letter in letters {
        parked.entry(letter.stream_id.to_string()).or_default().insert(letter.stream_version.0);
    }
    for (stream, versions) in &parked {
        if facts.get(stream).and_then(|f| f.poison_at).is_none() {
            counts.parked_without_poison += 1;
            counts.details.push(format!("parked without poison: {stream} {versions:?}"));
        }
    }
    for (stream, fact) in facts {
        if let Some(at) = fact.poison_at {
            let expected: BTreeSet<u64> = (at..=fact.head).collect();
            if parked.get(stream) != Some(&expected) {
                counts.poison_not_parked += 1;
                counts.details.push(format!(
                    "poison stream {stream} (poison at {at}, head {}) parked {:?}",
                    fact.head,
                    parked.get(stream)
                ));
            }
        }
    }
}

/// Rebuilds the ledger from the store next to the live one, swaps it in, and counts the
/// streams whose records differ from what the live model held.
pub async fn check_rebuild(runner: &CheckRunner, live: &BTreeMap<String, Applied>, counts: &mut Counts) {
    runner.rebuild(RebuildOptions::default(), &mut |_| {}).await.expect("rebuilding the ledger");
    let rebuilt = ledger(runner).await;
    let keys: BTreeSet<&String> = live.keys().chain(rebuilt.keys()).collect();
    counts.rebuild_differs = keys.into_iter().filter(|key| live.get(*key) != rebuilt.get(*key)).count() as u64;
}

/// What [`watch_status`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusWatch {
    /// Lag measurements taken.
    pub measured: u64,
    /// Of those, the ones that said the projection had taken in everything up to the head.
    pub said_caught_up: u64,
    /// Of those, the ones the ledger read right after contradicted: a stream's version up
    /// to that head (before its poison) was missing from it.
    pub overclaimed: u64,
}

/// Measures the ledger's lag the way `projections status` does, over and over until `stop`,
/// and whenever it says everything up to head H is taken in, reads the ledger (the read
/// model itself) and the store's stream heads up to H with plain SQL, and counts it as an
/// overclaim if any stream (before its poison event) is behind. The projection only moves
/// forward, so a ledger read after the measurement can only hold more.
pub async fn watch_status(
    checker: CheckRunner,
    store: PgEventStore,
    schema: String,
    stop: tokio_util::sync::CancellationToken,
    details: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> StatusWatch {
    let mut watch = StatusWatch::default();
    while !stop.is_cancelled() {
        if let Ok(lag) = checker.lag().await {
            watch.measured += 1;
            if let (true, Some(head)) = (lag.caught_up(), lag.head) {
                watch.said_caught_up += 1;
                let ledger = ledger(&checker).await;
                let behind = behind_at(&store, &schema, head, &ledger).await;
                if !behind.is_empty() {
                    watch.overclaimed += 1;
                    if let Ok(mut details) = details.lock() {
                        details.push(format!("status said caught up at {head}, but behind: {behind:?}"));
                    }
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(150)) => {}
        }
    }
    watch
}

/// The streams whose versions up to `head` (up to their first poison event) the ledger
/// does not hold, with the versions it holds and should hold: plain SQL on the store.
pub async fn behind_at(
    store: &PgEventStore,
    schema: &str,
    head: LogPosition,
    ledger: &BTreeMap<String, Applied>,
) -> Vec<(String, u64, u64)> {
    let sql = format!(
        "SELECT stream_id, max(stream_version), min(stream_version) FILTER (WHERE event_type = 'Poisoned') \
         FROM \"{schema}\".events WHERE (transaction_id, sequence) <= ($1, $2) GROUP BY stream_id"
    );
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(&sql)
        .bind(i64::try_from(head.transaction_id).unwrap_or(i64::MAX))
        .bind(i64::try_from(head.sequence).unwrap_or(i64::MAX))
        .fetch_all(store.pool())
        .await
        .expect("stream heads");
    let mut behind = Vec::new();
    for (stream, head, poison) in rows {
        let expected = poison.map_or(head, |at| at - 1).unsigned_abs();
        let held: BTreeSet<u64> = ledger.get(&stream).map(|a| a.versions.iter().copied().collect()).unwrap_or_default();
        let held = held.range(1..=expected).count() as u64;
        if held < expected {
            behind.push((stream, held, expected));
        }
    }
    behind
}

/// Runs `projections audit --json` on the ledger (as an operator would, through the ops
/// commands) and returns its report.
pub async fn audit(store: &PgEventStore, checker: &CheckRunner) -> serde_json::Value {
    use tidemark_projections::{Ops, OpsCommand, Output, ProjectionsCommand};
    let ops = Ops::new(store.clone()).projection(checker.clone()).non_interactive();
    let command = OpsCommand::Projections(ProjectionsCommand::Audit {
        name: LEDGER.to_owned(),
        wait: 0,
        output: Output { json: true },
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    ops.run(&command, &mut out, &mut err).await;
    let text = String::from_utf8_lossy(&out);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("audit printed no report ({e}): {text} {}", String::from_utf8_lossy(&err)))
}

/// The streams an audit report found behind, missing or ahead.
pub fn audit_findings(report: &serde_json::Value) -> u64 {
    ["behind", "missing", "ahead"].iter().map(|k| report[*k].as_u64().unwrap_or(u64::MAX / 4)).sum()
}

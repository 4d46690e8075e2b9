//! A rebuild's pages go without reading seen versions while its shadow is its own; a page
//! the projection fails on is taken with the check first and parks its stream; two
//! rebuilds of one projection at once never apply an event twice.

mod support;

use std::collections::BTreeMap;

use tidemark::{AppendOutcome, Envelope, EventCodec, EventStore, RecordedEvent};
use tidemark_projections::{
    ApplyError, DeadLetterStatus, DocumentReader, DocumentTx, PoisonPolicy, Projection, ProjectionRunner,
    RebuildOptions, RebuildOutcome, RebuildProgress, RunnerConfig,
};

use tidemark_projections_postgres::{PgReadModels, PgTx};

use support::deployment::Deployment;
use support::fragile::{config, traffic, Fragile, SICK};
use support::{append_rounds, read_log, replay, stream, tallies, LedgerEvent};

/// The log through the last of `outcomes` (of appends made one round after another),
/// once it is readable there: another test's open transaction may hold the readable head
/// back for a moment.
async fn log_through<S: EventStore>(store: &S, outcomes: &[AppendOutcome]) -> Vec<RecordedEvent> {
    let through = outcomes.iter().filter_map(|o| o.last_position).max().expect("appended");
    read_log(store, through).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_parks_a_poison_stream_from_its_event_on_and_takes_every_other_event_once() {
    let deployment = Deployment::new().await;
    traffic(&deployment.store).await;
    // Healthy events after the poison, in pages that are checked once it was met.
    let last = append_rounds(&deployment.store, 10, 2, 3).await;
    let (store, read_models, bus) = (&deployment.store, &deployment.read_models, &deployment.bus);
    let projection = Fragile::new("fragile", true);
    let runner =
        ProjectionRunner::new(projection, read_models.clone(), store.clone(), bus.clone(), config(PoisonPolicy::Park))
            .expect("runner");
    runner.set_up().await.expect("set up");
    let log = log_through(store, &last).await;

    // Pages of 4: the first go unchecked, then one fails on the poison event.
    let outcome = runner.rebuild(RebuildOptions::default().batch_size(4), &mut |_| {}).await.expect("rebuild");
    let RebuildOutcome::Completed { events, .. } = outcome else { panic!("not completed: {outcome:?}") };
    assert_eq!(events, log.len() as u64);

    let letters = runner.dead_letters().await.expect("dead letters");
    let versions: Vec<u64> = letters.iter().map(|l| l.stream_version.0).collect();
    assert_eq!(versions, vec![3, 4, 5, 6], "the poison event and everything after it: {letters:?}");
    assert!(letters.iter().all(|l| l.status == DeadLetterStatus::Parked && l.stream_id == stream(SICK)));
    let mut expected = replay(&log);
    expected.remove(stream(SICK).as_str());
    let mut built = tallies(read_models, &runner.projection().inner).await;
    let sick = built.remove(stream(SICK).as_str()).expect("stream 99 before the poison");
    assert_eq!(sick.version, 2, "nothing of stream 99 after the poison event was applied");
    assert_eq!(built, expected, "every other event once");
    deployment.stop.cancel();
}

/// Counts the events of each stream it is handed, with no check of its own: an event
/// applied twice is counted twice.
struct Counter {
    codec: EventCodec<LedgerEvent>,
}

impl Projection<PgReadModels> for Counter {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "counter"
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut PgTx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let key = event.stream_id.as_str();
        let seen: u64 = tx.get_as("count", key).await?.unwrap_or(0);
        tx.put_as("count", key, &(seen + 1)).await
    }
}

/// The counts of each stream's events the counter handles, by a fold of `log`.
fn expected_counts(log: &[RecordedEvent]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for event in log.iter().filter(|e| matches!(e.event_type.as_str(), "Deposited" | "Withdrawn")) {
        *counts.entry(event.stream_id.to_string()).or_default() += 1;
    }
    counts
}

async fn counts(read_models: &PgReadModels) -> BTreeMap<String, u64> {
    let all = read_models.documents("counter", "count", "", 1_000_000).await.expect("read documents");
    all.into_iter().map(|(k, v)| (k, serde_json::from_value(v).expect("a count"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rebuilds_of_one_projection_at_once_apply_every_event_once_and_hand_over_to_live() {
    let deployment = Deployment::new().await;
    let (store, read_models, bus) = (&deployment.store, &deployment.read_models, &deployment.bus);
    let last = append_rounds(store, 40, 6, 3).await;
    let log = log_through(store, &last).await;
    let runner = || {
        let projection = Counter { codec: EventCodec::without_upcasters().expect("codec") };
        ProjectionRunner::new(projection, read_models.clone(), store.clone(), bus.clone(), RunnerConfig::default())
            .expect("runner")
    };
    let (first, second) = (runner(), runner());
    first.set_up().await.expect("set up");

    // Small pages, so that each rebuild finds the shadow moved on by the other many times.
    let (mut a, mut b) = (0u64, 0u64);
    let (mut count_a, mut count_b) = (|p: &RebuildProgress| a = p.events, |p: &RebuildProgress| b = p.events);
    let (one, two) = tokio::join!(
        first.rebuild(RebuildOptions::default().batch_size(3), &mut count_a),
        second.rebuild(RebuildOptions::default().batch_size(3), &mut count_b),
    );
    let outcomes = [one.expect("first rebuild"), two.expect("second rebuild")];
    assert!(
        outcomes.iter().any(|o| matches!(o, RebuildOutcome::Completed { .. }))
            && outcomes.iter().all(|o| matches!(o, RebuildOutcome::Completed { .. } | RebuildOutcome::AlreadyRebuilt)),
        "{outcomes:?}"
    );
    assert!(a + b >= log.len() as u64, "the two took in {a} and {b} of {} events", log.len());
    // An event applied by both rebuilds would be counted twice, one taken by neither not at all.
    assert_eq!(counts(read_models).await, expected_counts(&log));
    assert!(first.dead_letters().await.expect("dead letters").is_empty());

    // The live runner goes on from the rebuilt model: what the shadow holds is passed over.
    let live = tokio::spawn({
        let (runner, stop) = (first.clone(), deployment.stop.clone());
        async move { runner.run(stop).await }
    });
    let more = append_rounds(store, 40, 1, 2).await;
    for outcome in &more {
        first.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    assert_eq!(counts(read_models).await, expected_counts(&log_through(store, &more).await));
    assert!(first.status().last_error.is_none(), "{:?}", first.status());
    deployment.stop.cancel();
    live.await.expect("joined").expect("clean stop");
}

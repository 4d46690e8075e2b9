//! A partition changing owner: the new owner applies what the old one held and never
//! committed at once (it opens its subscription after the cursor recorded with the last
//! committed batch, not where a broker's acknowledgements say), and nothing claims the
//! events applied before they are. Each scenario runs on the JetStream feed (with a
//! relay) and on the PostgreSQL feed (no relay: the runners read the store's log).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::{AppendRequest, Envelope, EventCodec, EventStore as _, ExpectedVersion, StreamId, StreamVersion};
use tidemark_nats::RelayConfig;
use tidemark_projections::{ApplyError, DocumentTx, Feed, Projection, ProjectionRunner, ReadModels};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{events, read_log, replay, tallies, LedgerEvent, TallyProjection};
use tidemark_projections::ReadModelsAdmin;

/// How soon the next owner must have applied what the dead one held. The old durable
/// consumers made it wait for the consumer's `ack_wait` (30 s by default).
const TAKEOVER: Duration = Duration::from_secs(3);

/// The tally projection, except that it never finishes applying one chosen event: the
/// runner holding that event's batch hangs inside its transaction until it is killed.
struct Hanging {
    tally: TallyProjection,
    at: (StreamId, u64),
    reached: Arc<Notify>,
}

impl<R> Projection<R> for Hanging
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        Projection::<R>::name(&self.tally)
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        Projection::<R>::codec(&self.tally)
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        if event.stream_id == self.at.0 && event.stream_version.0 == self.at.1 {
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        Projection::<R>::apply(&self.tally, tx, event).await
    }
}

async fn append(bench: &Bench, stream: &StreamId, from: usize, count: usize) -> tidemark::AppendOutcome {
    let request = AppendRequest::new(stream.clone(), ExpectedVersion::Any, events(0, from, count));
    bench.store.append(request).await.expect("append")
}

/// The feed a scenario runs on.
#[derive(Debug, Clone, Copy)]
enum Via {
    JetStream,
    Postgres,
}

/// Runs `scenario` on a fresh bench of `partitions` partitions, fed `via`: with a relay to
/// the test's JetStream stream, or with no relay and the PostgreSQL feed.
async fn on<Fut>(via: Via, partitions: u32, scenario: impl FnOnce(Bench) -> Fut)
where
    Fut: std::future::Future<Output = Bench>,
{
    let bench = Bench::new(partitions).await;
    let relay: Option<(CancellationToken, JoinHandle<tidemark_nats::Result<()>>)> = match via {
        Via::JetStream => Some(spawn_relay(&bench.relay(RelayConfig::new("main")).await)),
        Via::Postgres => None,
    };
    let bench = scenario(bench).await;
    if let Some((stop_relay, relay_task)) = relay {
        stop_relay.cancel();
        relay_task.await.expect("joined").expect("clean stop");
        bench.delete_stream().await;
    }
}

/// The PostgreSQL feed of the bench's store, partitioned like its JetStream stream.
fn pg_feed(bench: &Bench) -> PgLogFeed {
    PgLogFeed::new(bench.store.clone(), bench.scheme.partitions()).expect("feed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_tail_held_by_a_dead_runner_is_applied_by_the_next_owner_at_once() {
    on(Via::JetStream, 1, |bench| tail_held_by_a_dead_runner(bench, Bench::feed)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_a_stream_tail_held_by_a_dead_runner_is_applied_by_the_next_owner_at_once() {
    on(Via::Postgres, 1, |bench| tail_held_by_a_dead_runner(bench, pg_feed)).await;
}

async fn tail_held_by_a_dead_runner<F: Feed>(bench: Bench, feed: fn(&Bench) -> F) -> Bench {
    let tail = StreamId::new("account-tail").expect("id");
    let other = StreamId::new("account-other").expect("id");

    // The first runner applies version 1 of the stream, then hangs on version 2, its
    // last: a runner that dies before committing the batch holding a stream's tail.
    let reached = Arc::new(Notify::new());
    let hanging = Hanging { tally: TallyProjection::new("tails"), at: (tail.clone(), 2), reached: reached.clone() };
    let first: ProjectionRunner<Hanging, PgReadModels, _, _> = ProjectionRunner::new(
        hanging,
        bench.read_models.clone(),
        bench.store.clone(),
        feed(&bench),
        Default::default(),
    )
    .expect("runner");
    first.set_up().await.expect("set up");
    let (_, first_task) = spawn_runner(&first);
    let v1 = append(&bench, &tail, 0, 1).await;
    first.wait_for_append(&v1, support::DEADLINE).await.expect("version 1 applied");
    let v2 = append(&bench, &tail, 1, 1).await;
    tokio::time::timeout(support::DEADLINE, reached.notified()).await.expect("the first runner holds version 2");

    // While it holds it, nothing may say version 2 is applied.
    let second = bench.runner("tails", feed(&bench)).await;
    let lag = second.lag().await.expect("lag");
    assert_eq!(lag.events, 1, "the held event counts as lag: {lag:?}");
    assert_eq!(bench.read_models.stream_seen("tails", &tail).await.expect("seen"), StreamVersion(1));

    // Killed. Later events of another stream arrive; the next owner takes the partition.
    first_task.abort();
    let _ = first_task.await;
    let later = append(&bench, &other, 0, 3).await;
    let started = Instant::now();
    let (stop_second, second_task) = spawn_runner(&second);
    second.wait_for_append(&v2, TAKEOVER).await.expect("the tail is applied within the takeover bound");
    second.wait_for_append(&later, TAKEOVER).await.expect("later events too");
    let took = started.elapsed();
    assert!(took < TAKEOVER, "took {took:?}");
    assert!(second.lag().await.expect("lag").caught_up());

    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    assert_eq!(tallies(&bench.read_models, second.projection()).await, replay(&log));
    // The recorded position and cursor are those of the last message, and the store agrees
    // with every stream.
    let partitions = bench.read_models.partitions("tails").await.expect("partitions");
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].1.position, head);
    assert!(partitions[0].1.cursor.is_some());
    for stream in [&tail, &other] {
        let stored = bench.store.stream_version(stream).await.expect("version");
        assert_eq!(bench.read_models.stream_seen("tails", stream).await.expect("seen"), stored);
    }
    assert_eq!(bench.store.stream_version(&tail).await.expect("version"), StreamVersion(2));

    stop_second.cancel();
    second_task.await.expect("joined").expect("clean stop");
    bench
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_given_back_is_taken_over_from_its_committed_cursor() {
    // Two runners in turn on the same partitions, the first stopped cleanly mid-stream:
    // the second starts where the first committed, neither redelivering what was
    // committed nor waiting for anything.
    on(Via::JetStream, 2, |bench| given_back(bench, Bench::feed)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_a_partition_given_back_is_taken_over_from_its_committed_cursor() {
    on(Via::Postgres, 2, |bench| given_back(bench, pg_feed)).await;
}

async fn given_back<F: Feed>(bench: Bench, feed: fn(&Bench) -> F) -> Bench {
    let first = bench.runner("turns", feed(&bench)).await;
    let (stop_first, first_task) = spawn_runner(&first);
    for outcome in support::append_rounds(&bench.store, 6, 2, 3).await {
        first.wait_for_append(&outcome, support::DEADLINE).await.expect("caught up");
    }
    stop_first.cancel();
    first_task.await.expect("joined").expect("clean stop");

    let second = bench.runner("turns", feed(&bench)).await;
    let (stop_second, second_task) = spawn_runner(&second);
    let outcomes = support::append_rounds(&bench.store, 6, 1, 3).await;
    for outcome in &outcomes {
        second.wait_for_append(outcome, TAKEOVER).await.expect("applied within the takeover bound");
    }
    assert_eq!(second.status().totals.duplicates, 0, "nothing committed came again");
    assert_eq!(second.status().totals.applied + second.status().totals.skipped, 18);
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    assert_eq!(tallies(&bench.read_models, second.projection()).await, replay(&log));

    stop_second.cancel();
    second_task.await.expect("joined").expect("clean stop");
    bench
}

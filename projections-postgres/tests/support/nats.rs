//! JetStream and PostgreSQL set-up: a store in a fresh schema, a relay publishing to a
//! unique stream, and runners fed by that stream.

use std::time::Duration;

use tidemark::{EventStore as _, LogPosition};

use tidemark_nats::{ConsumerSettings, JetStreamFeed, JetStreamSubscription};
use tidemark_nats::{MessageKey, NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{Feed, FeedCursor, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::{nats_url, unique_name, TestSchema};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::TallyProjection;

pub(crate) type PgRunner<F = JetStreamFeed> = ProjectionRunner<TallyProjection, PgReadModels, PgEventStore, F>;

/// Everything one test needs.
pub(crate) struct Bench {
    pub schema: TestSchema,
    pub store: PgEventStore,
    pub read_models: PgReadModels,
    pub client: async_nats::Client,
    pub scheme: SubjectScheme,
    pub settings: StreamSettings,
    /// The store's message key, which `feed` checks signatures with.
    pub key: MessageKey,
}

impl Bench {
    /// The head of the log once every transaction running now has ended. `log_head` is the
    /// readable head: a transaction of another test, older than this test's last append,
    /// can hold it back for a moment after that append returned.
    pub(crate) async fn settled_head(&self) -> LogPosition {
        let pool = self.schema.pool();
        let next: i64 = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await
            .expect("snapshot");
        super::wait_until("every transaction running before has ended", || async {
            let oldest: i64 = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                .fetch_one(pool)
                .await
                .expect("snapshot");
            oldest >= next
        })
        .await;
        self.store.log_head().await.expect("head").expect("events")
    }

    pub(crate) async fn new(partitions: u32) -> Self {
        super::logs();
        let schema = TestSchema::new().await;
        let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(20));
        let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
        store.migrate().await.expect("migrate");
        let key = MessageKey::load(&store).await.expect("message key");
        let read_models = PgReadModels::new(&store);
        read_models.migrate().await.expect("projection migrations");
        let client = async_nats::connect(nats_url().await).await.expect("connect to NATS");
        let name = unique_name("proj");
        let scheme = SubjectScheme::new(format!("t.{}", name.to_lowercase()), partitions).expect("scheme");
        let settings = StreamSettings::new(name).max_age(Duration::from_secs(600));
        Self { schema, store, read_models, client, scheme, settings, key }
    }

    pub(crate) fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client.clone())
    }

    /// A relay publishing to this test's stream (created or updated with `settings`).
    pub(crate) async fn relay(&self, config: RelayConfig) -> NatsRelay {
        let config = config.subjects(self.scheme.clone()).idle_wait(Duration::from_millis(200));
        let relay = NatsRelay::new(self.store.clone(), self.client.clone(), config).expect("relay");
        relay.ensure_stream(&self.settings).await.expect("stream");
        relay
    }

    /// A feed of this test's stream that checks signatures with the store's key.
    pub(crate) fn feed(&self) -> JetStreamFeed {
        self.feed_without_key().with_message_key(self.key.clone())
    }

    /// A feed of this test's stream that checks every event against the store.
    pub(crate) fn feed_without_key(&self) -> JetStreamFeed {
        let settings = ConsumerSettings::default().inactive_threshold(Duration::from_secs(5));
        JetStreamFeed::new(self.jetstream(), self.settings.name.clone(), self.scheme.clone()).with_settings(settings)
    }

    /// A runner whose read model is set up (so events appended before it starts reach it
    /// through JetStream, not through the initial build from the log).
    pub(crate) async fn runner<F: tidemark_projections::Feed>(&self, name: &str, feed: F) -> PgRunner<F> {
        let config = RunnerConfig::default()
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .rebalance_interval(Duration::from_millis(100))
            .lag_interval(Duration::from_millis(100));
        let runner = ProjectionRunner::new(
            TallyProjection::new(name),
            self.read_models.clone(),
            self.store.clone(),
            feed,
            config,
        )
        .expect("runner");
        runner.set_up().await.expect("set up");
        runner
    }

    pub(crate) async fn delete_stream(&self) {
        self.jetstream().delete_stream(&self.settings.name).await.expect("delete stream");
    }
}

/// Runs a relay until the token is cancelled.
pub(crate) fn spawn_relay(relay: &NatsRelay) -> (CancellationToken, JoinHandle<tidemark_nats::Result<()>>) {
    let shutdown = CancellationToken::new();
    let relay = relay.clone();
    let stop = shutdown.clone();
    (shutdown, tokio::spawn(async move { relay.run(stop).await }))
}

/// Runs a runner on every partition until the token is cancelled.
pub(crate) fn spawn_runner<P, R, S, F>(
    runner: &ProjectionRunner<P, R, S, F>,
) -> (CancellationToken, JoinHandle<tidemark_projections::Result<()>>)
where
    R: tidemark_projections::ReadModelsAdmin + tidemark_projections::BatchOptimisations,
    P: tidemark_projections::Projection<R>,
    S: tidemark::EventStore + 'static,
    F: Feed,
{
    let shutdown = CancellationToken::new();
    let runner = runner.clone();
    let stop = shutdown.clone();
    (shutdown, tokio::spawn(async move { runner.run(stop).await }))
}

/// A feed that forgets where the runner stands: every subscription starts at the
/// beginning of the stream, so everything committed comes again (as it would for a
/// partition whose recorded cursor was lost).
pub(crate) struct FromStart(pub JetStreamFeed);

impl Feed for FromStart {
    type Subscription = JetStreamSubscription;

    fn partitions(&self) -> u32 {
        self.0.partitions()
    }

    fn partition_of(&self, stream: &tidemark::StreamId) -> u32 {
        self.0.partition_of(stream)
    }

    async fn subscribe(
        &self,
        consumer: &str,
        partition: u32,
        _after: Option<FeedCursor>,
    ) -> tidemark_projections::Result<JetStreamSubscription> {
        self.0.subscribe(consumer, partition, None).await
    }
}

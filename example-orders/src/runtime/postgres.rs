//! The PostgreSQL deployment: a `PgEventStore` in its own schema, `PgReadModels`, runners
//! sharing partitions through PostgreSQL advisory locks, and their feed: a `NatsRelay`
//! publishing the log to a JetStream stream read by a `JetStreamFeed` (the default), or,
//! with [`FeedChoice::Postgres`], a `PgLogFeed` reading the log itself (no relay, no NATS).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tidemark::ShreddingStore;
use tidemark_nats::JetStreamFeed;
use tidemark_nats::{MessageKey, NatsConnect, NatsRelay, RelayConfig, RelayMonitor, StreamSettings, SubjectScheme};
use tidemark_postgres::{ForgetReport, PgEventStore, PgPersonalKeys, PgStoreConfig, PgTenantStore};
use tidemark_projections::{Projection, ProjectionRunner, RebuildOptions, RevealingFeed, RunnerConfig};
use tidemark_projections_postgres::{Coordination, PgLogFeed, PgReadModels};

use super::backend::{Backend, Running};
use super::feed::{FeedChoice, OrdersFeed};
use super::runners::{Role, RunMode};
use super::tasks::Tasks;
use super::StartError;
use crate::app::AppConfig;
use crate::auth::TokenKeys;
use crate::domain::{import_fixture, personal_data};
use crate::metrics::sample_pools;
use crate::read_models::{OrdersProjection, SalesProjection};
use crate::secret::SecretUrl;

/// Where the deployment lives. Every field but the database URL has a default.
///
/// Its `Debug` shows the database URL without its password (and the NATS options without
/// theirs).
#[derive(Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// The PostgreSQL URL. It may carry a password: log [`PgOptions::database_url_redacted`].
    pub database_url: String,
    /// The schema of the store and the projections' bookkeeping; each read model lives
    /// in `<schema>_<projection>` (default `orders`).
    pub schema: String,
    /// How to connect to NATS: servers, credentials, TLS (default `nats://127.0.0.1:4222`,
    /// no credentials, no TLS).
    pub nats: NatsConnect,
    /// The JetStream stream (default `ORDERS`).
    pub stream: String,
    /// The subjects' prefix: `<prefix>.<partition>.<category>.<EventType>.v<N>` (default
    /// `orders.events`).
    pub subject_prefix: String,
    /// Partitions of the subjects and consumers (default 4). Choose it once: changing it
    /// moves streams between partitions.
    pub partitions: u32,
    /// The relay's name (default `orders`): relays of one name elect one leader.
    pub relay_name: String,
    /// Connections of the store's pool: commands, the relay, log reads (default 16).
    pub store_connections: u32,
    /// Connections of the read models' pool: batch transactions and queries (default 16).
    /// A pool of its own, so that a process-manager batch, which holds a read-model
    /// transaction while its commands append through the store, never waits for a
    /// connection that batches like it hold.
    pub read_model_connections: u32,
    /// Longest wait for a connection; then the request fails with 503 (default 3 s).
    pub acquire_timeout: Duration,
    /// The JetStream KV bucket the order summaries are published to (default: none set,
    /// `<stream>_SUMMARY`, so `ORDERS_SUMMARY`; see [`summary_bucket`](Self::summary_bucket)).
    pub summary_bucket: Option<String>,
    /// Where the consumers read events from (default JetStream). With
    /// [`FeedChoice::Postgres`] no relay runs and no NATS connection is made.
    pub feed: FeedChoice,
}

impl PgOptions {
    /// The defaults for `database_url`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            schema: Self::SCHEMA.to_owned(),
            nats: NatsConnect::new(Self::NATS_URL),
            stream: Self::STREAM.to_owned(),
            subject_prefix: Self::SUBJECT_PREFIX.to_owned(),
            partitions: Self::PARTITIONS,
            relay_name: "orders".to_owned(),
            store_connections: 16,
            read_model_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            summary_bucket: None,
            feed: FeedChoice::default(),
        }
    }

    /// The KV bucket of the order summaries: the one set, or `<stream>_SUMMARY`.
    pub fn summary_bucket(&self) -> String {
        self.summary_bucket.clone().unwrap_or_else(|| format!("{}_SUMMARY", self.stream))
    }

    /// Sets the KV bucket of the order summaries.
    pub fn with_summary_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.summary_bucket = Some(bucket.into());
        self
    }

    /// The default schema.
    pub const SCHEMA: &'static str = "orders";
    /// The default NATS URL.
    pub const NATS_URL: &'static str = "nats://127.0.0.1:4222";
    /// The default stream name.
    pub const STREAM: &'static str = "ORDERS";
    /// The default subject prefix.
    pub const SUBJECT_PREFIX: &'static str = "orders.events";
    /// The default number of partitions.
    pub const PARTITIONS: u32 = 4;

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the NATS servers (one URL or a comma-separated list), keeping the other
    /// NATS options.
    pub fn nats_url(mut self, url: impl Into<String>) -> Self {
        self.nats.servers = NatsConnect::new(&url.into()).servers;
        self
    }

    /// Sets how to connect to NATS.
    pub fn nats(mut self, nats: NatsConnect) -> Self {
        self.nats = nats;
        self
    }

    /// The database URL with its password replaced by `***`, for logs and messages.
    pub fn database_url_redacted(&self) -> String {
        SecretUrl::new(self.database_url.as_str()).redacted()
    }

    /// Sets the JetStream stream and the subject prefix.
    pub fn stream(mut self, stream: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        self.stream = stream.into();
        self.subject_prefix = subject_prefix.into();
        self
    }

    /// Sets where the consumers read events from.
    pub fn feed(mut self, feed: FeedChoice) -> Self {
        self.feed = feed;
        self
    }

    /// Sets the number of partitions.
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Sets the sizes of the store's and the read models' pools.
    pub fn connections(mut self, store: u32, read_models: u32) -> Self {
        self.store_connections = store.max(1);
        self.read_model_connections = read_models.max(1);
        self
    }

    fn pool(&self, connections: u32) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
            .acquire_timeout(self.acquire_timeout)
    }
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("database_url", &self.database_url_redacted())
            .field("schema", &self.schema)
            .field("nats", &self.nats)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("partitions", &self.partitions)
            .field("relay_name", &self.relay_name)
            .field("store_connections", &self.store_connections)
            .field("read_model_connections", &self.read_model_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("summary_bucket", &self.summary_bucket)
            .field("feed", &self.feed)
            .finish()
    }
}

/// The store the app's command handlers and consumers use on PostgreSQL: the personal
/// fields of events ([`personal_data`]) sealed on append, revealed on read.
pub type PgOrdersStore = ShreddingStore<PgEventStore, PgPersonalKeys>;

/// [`PgOrdersStore`] limited to one tenant's streams.
pub type PgTenantOrdersStore = ShreddingStore<PgTenantStore, PgPersonalKeys>;

/// The consumers' feed on PostgreSQL (the relay's JetStream stream or the store's log),
/// whose sealed personal fields are revealed before the runners apply them.
pub type PgOrdersFeed = RevealingFeed<OrdersFeed, PgPersonalKeys>;

/// A connected deployment.
#[derive(Debug, Clone)]
pub struct PgDeployment {
    /// The store, as stored (personal fields sealed): the relay, imports and the ops
    /// commands use it; the app uses [`orders_store`](Self::orders_store).
    pub store: PgEventStore,
    /// The customers' keys, which seal their personal data.
    pub keys: PgPersonalKeys,
    /// The read models, in the store's schema, on a pool of their own.
    pub read_models: PgReadModels,
    /// The NATS client; none on the PostgreSQL feed.
    pub client: Option<async_nats::Client>,
    /// The subjects the relay publishes to and the consumers read.
    pub scheme: SubjectScheme,
    /// The options it was connected with.
    pub options: PgOptions,
}

impl PgDeployment {
    /// Connects to PostgreSQL and NATS; fails when either is unreachable, or NATS refuses
    /// the credentials or the TLS handshake. On the PostgreSQL feed, to PostgreSQL only.
    pub async fn connect(options: PgOptions) -> Result<Self, StartError> {
        if !options.feed.needs_nats() {
            tracing::info!(database = %options.database_url_redacted(), "connecting (PostgreSQL feed, no NATS)");
            return Self::with_client(options, None).await;
        }
        tracing::info!(database = %options.database_url_redacted(), nats = %options.nats, "connecting");
        let client = options.nats.connect().await?;
        Self::with_client(options, Some(client)).await
    }

    /// Connects to PostgreSQL, and to NATS in the background (the ops commands, which
    /// read PostgreSQL only, work while NATS is down). On the PostgreSQL feed, to
    /// PostgreSQL only.
    pub async fn connect_lazily(options: PgOptions) -> Result<Self, StartError> {
        if !options.feed.needs_nats() {
            return Self::connect(options).await;
        }
        tracing::info!(database = %options.database_url_redacted(), nats = %options.nats, "connecting");
        let client = options.nats.clone().retry_on_initial_connect(true).connect().await?;
        Self::with_client(options, Some(client)).await
    }

    async fn with_client(options: PgOptions, client: Option<async_nats::Client>) -> Result<Self, StartError> {
        let connect = |connections| options.pool(connections).connect(&options.database_url);
        let (store_pool, read_pool) =
            tokio::try_join!(connect(options.store_connections), connect(options.read_model_connections))
                .map_err(|source| StartError::Database { context: "connecting", source })?;
        let config = PgStoreConfig::default().schema(&options.schema);
        let store = PgEventStore::from_pool(store_pool, config.clone())?;
        // `PgReadModels` takes its pool from a store: one that neither notifies nor
        // batches, dropped at once, lends it the second pool.
        let lender = PgEventStore::from_pool(read_pool, config.notify(false).group_commit(false))?;
        let read_models = PgReadModels::new(&lender);
        let scheme = SubjectScheme::new(&options.subject_prefix, options.partitions)?;
        let keys = PgPersonalKeys::new(store.pool().clone(), &options.schema, Arc::new(personal_data()?))?;
        Ok(Self { store, keys, read_models, client, scheme, options })
    }

    /// Applies the store's and the read models' migrations and creates (or updates) the
    /// JetStream stream and the order summaries' KV bucket (not on the PostgreSQL feed).
    pub async fn migrate(&self) -> Result<(), StartError> {
        self.store.migrate().await?;
        self.read_models.migrate().await?;
        if let Some(client) = &self.client {
            self.relay()?.ensure_stream(&self.stream_settings()).await?;
            let jetstream = async_nats::jetstream::new(client.clone());
            tidemark_nats::ensure_kv_bucket(&jetstream, &self.options.summary_bucket()).await?;
        }
        Ok(())
    }

    /// Fails unless every migration of the store and of the read models is applied:
    /// start-up code never creates tables, and a schema migrated only part of the way would
    /// fail later, at run time.
    pub async fn check(&self) -> Result<(), StartError> {
        let mut pending = self.store.pending_migrations().await?;
        pending.extend(self.read_models.pending_migrations().await?);
        if pending.is_empty() {
            return Ok(());
        }
        pending.sort_unstable();
        Err(StartError::NotMigrated { schema: self.options.schema.clone(), pending })
    }

    /// The JetStream stream's settings.
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings::new(&self.options.stream)
    }

    /// The relay; fails on the PostgreSQL feed, which needs none.
    pub fn relay(&self) -> Result<NatsRelay, StartError> {
        let Some(client) = self.client.clone() else { return Err(StartError::NoRelay) };
        let config = RelayConfig::new(&self.options.relay_name).subjects(self.scheme.clone());
        Ok(NatsRelay::new(self.store.clone(), client, config)?)
    }

    /// Creates or updates the stream, then runs the relay in `tasks`; returns a handle
    /// that reads its role and counters.
    pub async fn spawn_relay(&self, tasks: &mut Tasks) -> Result<RelayMonitor, StartError> {
        let relay = self.relay()?;
        relay.ensure_stream(&self.stream_settings()).await?;
        let monitor = relay.monitor();
        tasks.spawn("relay", move |stop| async move { relay.run(stop).await });
        Ok(monitor)
    }

    /// Samples the gauges of the store's and the read models' pools every second in `tasks`.
    pub fn spawn_pool_gauges(&self, tasks: &mut Tasks) {
        let pools = vec![("store", self.store.pool().clone()), ("read_models", self.read_models.pool().clone())];
        tasks.spawn("pool gauges", move |stop| async move {
            sample_pools(pools, Duration::from_secs(1), stop).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// The backend: the store, read models next to it, the feed (the relay's stream,
    /// which takes in the events signed with the store's key without checking them against
    /// the store; or the store's log itself), partitions shared by every process using
    /// this schema.
    pub async fn backend(&self) -> Result<Backend<PgOrdersStore, PgReadModels, PgOrdersFeed>, StartError> {
        let feed = RevealingFeed::new(self.sealed_feed().await?, self.keys.personal_data().clone(), self.keys.clone());
        let coordination = Coordination::postgres(self.store.pool().clone(), &self.options.schema);
        let read_models = self.read_models.clone();
        Ok(Backend { store: self.orders_store(), read_models, feed, mode: RunMode::Shared(coordination) })
    }

    /// The feed as stored: personal fields still sealed (the order summaries' KV
    /// projection reads it, so the bucket never holds a personal value in plain text).
    pub async fn sealed_feed(&self) -> Result<OrdersFeed, StartError> {
        Ok(match &self.client {
            Some(client) => {
                let key = MessageKey::load(&self.store).await?;
                let jetstream = async_nats::jetstream::new(client.clone());
                let feed = JetStreamFeed::new(jetstream, &self.options.stream, self.scheme.clone());
                OrdersFeed::JetStream(Box::new(feed.with_message_key(key)))
            }
            None => OrdersFeed::Postgres(PgLogFeed::new(self.store.clone(), self.options.partitions)?),
        })
    }

    /// The store as the app uses it: personal fields sealed on append, revealed on read.
    pub fn orders_store(&self) -> PgOrdersStore {
        ShreddingStore::new(self.store.clone(), self.keys.personal_data().clone(), self.keys.clone())
    }

    /// One tenant's view of the store as the app uses it (`--tenant` of the ops
    /// commands): another tenant's streams read as empty and refuse appends.
    pub fn tenant_store(&self, tenant: &str) -> Result<PgTenantOrdersStore, StartError> {
        let view = self.store.for_tenant(tenant)?;
        Ok(ShreddingStore::new(view, self.keys.personal_data().clone(), self.keys.clone()))
    }

    /// Forgets a customer (`orders forget CUSTOMER`): destroys the key that seals their
    /// delivery contacts and deletes the snapshots of their orders, then rebuilds the read
    /// models that copy an order's state (`orders`: order details and customers' order
    /// lists; `sales`: its open orders), which show `"[forgotten]"` in their place
    /// afterwards. Safe to run again.
    pub async fn forget_customer(&self, customer: &str) -> Result<ForgetReport, StartError> {
        let report = self.keys.forget_subject(customer).await?;
        self.rebuild(OrdersProjection::new()?).await?;
        self.rebuild(SalesProjection::new()?).await?;
        Ok(report)
    }

    async fn rebuild<P: Projection<PgReadModels>>(&self, projection: P) -> Result<(), StartError> {
        let backend = self.backend().await?;
        let (read_models, store, feed) = (backend.read_models, backend.store, backend.feed);
        let runner = ProjectionRunner::new(projection, read_models, store, feed, RunnerConfig::default())?;
        runner.rebuild(RebuildOptions::default(), &mut |_| {}).await?;
        Ok(())
    }
}

/// Options of `serve` on PostgreSQL + JetStream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgServe {
    /// The app's knobs.
    pub config: AppConfig,
    /// The token keys.
    pub keys: TokenKeys,
    /// Whether to import the v1 fixture at start; idempotent (default true).
    pub import_fixture: bool,
    /// Whether the relay (on the JetStream feed) and every consumer run in this process
    /// too (default true, as in `orders` and `orders serve`). Otherwise only the notifier
    /// does (`serve --front`), and `orders relay` and `orders projections run` run
    /// elsewhere.
    pub all: bool,
}

impl PgServe {
    /// Defaults with these keys.
    pub fn new(keys: TokenKeys) -> Self {
        Self { config: AppConfig::default(), keys, import_fixture: true, all: true }
    }
}

/// Serves the app's state on a migrated deployment: imports the fixture (if asked) and
/// starts the relay and consumers this process runs.
pub async fn start_postgres(
    deployment: &PgDeployment,
    options: PgServe,
) -> Result<Running<PgOrdersStore, PgReadModels, PgOrdersFeed>, StartError> {
    deployment.check().await?;
    if options.import_fixture {
        let imported = import_fixture(&deployment.store).await?;
        tracing::info!(events = imported, "imported the v1 fixture (events already stored are skipped)");
    }
    let mut tasks = Tasks::default();
    deployment.spawn_pool_gauges(&mut tasks);
    if options.all && deployment.client.is_some() {
        deployment.spawn_relay(&mut tasks).await?;
    }
    let role = if options.all { Role::All } else { Role::Front };
    deployment.spawn_summaries(&role, &mut tasks).await?;
    deployment.backend().await?.start(options.keys, options.config, &role, tasks)
}

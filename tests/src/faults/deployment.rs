//! One deployment's settings, passed to every process through environment variables, and the
//! pieces each process builds from them.

use std::time::Duration;

use async_nats::ServerAddr;
use sqlx::postgres::PgPoolOptions;
use tidemark_nats::JetStreamFeed;
use tidemark_nats::{NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{PoisonPolicy, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{PgLogFeed, PgReadModels};

use super::ledger::LedgerProjection;

/// The runner type of the harness, on the JetStream feed unless told otherwise.
pub type LedgerRunner<F = JetStreamFeed> = ProjectionRunner<LedgerProjection, PgReadModels, PgEventStore, F>;

/// The runner the checks measure and read the ledger through: it never runs, so its feed
/// (the PostgreSQL one, which needs no NATS) only gives the partitioning.
pub type CheckRunner = LedgerRunner<PgLogFeed>;

/// Where the deployment's runners take their events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultFeed {
    /// JetStream, filled by the relays.
    JetStream,
    /// The store's log, read directly: no relay, no NATS.
    Postgres,
}

impl FaultFeed {
    /// The value of `FAULT_FEED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::JetStream => "jetstream",
            Self::Postgres => "postgres",
        }
    }
}

/// Errors building a piece of the deployment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeploymentError {
    /// A variable is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// PostgreSQL could not be reached or set up.
    #[error("postgres: {0}")]
    Postgres(String),
    /// NATS could not be reached or set up.
    #[error("nats: {0}")]
    Nats(String),
    /// The projection runtime refused its configuration.
    #[error("projections: {0}")]
    Projections(#[from] tidemark_projections::ProjectionError),
}

/// Where a deployment lives. Every process of one deployment gets the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultConfig {
    /// PostgreSQL URL.
    pub database_url: String,
    /// The store's schema; the ledger read model lives in `<schema>_ledger`.
    pub schema: String,
    /// NATS server URLs (several for a cluster).
    pub nats_urls: Vec<String>,
    /// JetStream stream name.
    pub stream: String,
    /// Subject prefix.
    pub prefix: String,
    /// Partitions of subjects and consumers.
    pub partitions: u32,
    /// JetStream replicas of the stream.
    pub replicas: usize,
    /// The runners' feed.
    pub feed: FaultFeed,
}

impl FaultConfig {
    const VARS: [&'static str; 8] = [
        "FAULT_DATABASE_URL",
        "FAULT_SCHEMA",
        "FAULT_NATS_URLS",
        "FAULT_STREAM",
        "FAULT_PREFIX",
        "FAULT_PARTITIONS",
        "FAULT_REPLICAS",
        "FAULT_FEED",
    ];

    /// The variables to set on a process of this deployment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let values = [
            self.database_url.clone(),
            self.schema.clone(),
            self.nats_urls.join(","),
            self.stream.clone(),
            self.prefix.clone(),
            self.partitions.to_string(),
            self.replicas.to_string(),
            self.feed.name().to_owned(),
        ];
        Self::VARS.into_iter().zip(values).collect()
    }

    /// Reads the variables [`FaultConfig::env`] sets.
    ///
    /// # Errors
    ///
    /// [`DeploymentError::Config`] naming a missing or malformed variable.
    pub fn from_env() -> Result<Self, DeploymentError> {
        let var = |name: &str| std::env::var(name).map_err(|_| DeploymentError::Config(format!("{name} is not set")));
        let number = |name: &str| -> Result<u64, DeploymentError> {
            var(name)?.parse().map_err(|e| DeploymentError::Config(format!("{name}: {e}")))
        };
        Ok(Self {
            database_url: var("FAULT_DATABASE_URL")?,
            schema: var("FAULT_SCHEMA")?,
            nats_urls: var("FAULT_NATS_URLS")?.split(',').map(str::to_owned).collect(),
            stream: var("FAULT_STREAM")?,
            prefix: var("FAULT_PREFIX")?,
            partitions: u32::try_from(number("FAULT_PARTITIONS")?)
                .map_err(|e| DeploymentError::Config(format!("FAULT_PARTITIONS: {e}")))?,
            replicas: usize::try_from(number("FAULT_REPLICAS")?)
                .map_err(|e| DeploymentError::Config(format!("FAULT_REPLICAS: {e}")))?,
            feed: match var("FAULT_FEED")?.as_str() {
                "jetstream" => FaultFeed::JetStream,
                "postgres" => FaultFeed::Postgres,
                other => return Err(DeploymentError::Config(format!("FAULT_FEED: {other} is not jetstream|postgres"))),
            },
        })
    }

    /// A store on a pool of `connections`; fails fast when PostgreSQL is away.
    ///
    /// # Errors
    ///
    /// [`DeploymentError::Postgres`] when PostgreSQL cannot be reached.
    pub async fn store(&self, connections: u32) -> Result<PgEventStore, DeploymentError> {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect(&self.database_url)
            .await
            .map_err(|e| DeploymentError::Postgres(e.to_string()))?;
        let config = PgStoreConfig::default().schema(&self.schema).poll_interval(Duration::from_millis(50));
        PgEventStore::from_pool(pool, config).map_err(|e| DeploymentError::Postgres(e.to_string()))
    }

    /// A NATS client for every server of the deployment, which keeps reconnecting.
    ///
    /// # Errors
    ///
    /// [`DeploymentError::Nats`] for a malformed URL or when no server answers.
    pub async fn nats(&self) -> Result<async_nats::Client, DeploymentError> {
        let servers = self
            .nats_urls
            .iter()
            .map(|url| url.parse::<ServerAddr>().map_err(|e| DeploymentError::Nats(format!("{url}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(servers)
            .await
            .map_err(|e| DeploymentError::Nats(e.to_string()))
    }

    /// The subject scheme.
    ///
    /// # Errors
    ///
    /// [`DeploymentError::Config`] for an invalid prefix or partition count.
    pub fn scheme(&self) -> Result<SubjectScheme, DeploymentError> {
        SubjectScheme::new(&self.prefix, self.partitions).map_err(|e| DeploymentError::Config(e.to_string()))
    }

    /// The stream's settings.
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings::new(&self.stream).replicas(self.replicas).max_age(Duration::from_secs(3600))
    }

    /// A relay that backs off briefly, so the tests see recoveries quickly.
    ///
    /// # Errors
    ///
    /// [`DeploymentError::Config`] when the relay refuses the configuration.
    pub fn relay(&self, store: PgEventStore, client: async_nats::Client) -> Result<NatsRelay, DeploymentError> {
        let config = RelayConfig::new("faults")
            .subjects(self.scheme()?)
            .idle_wait(Duration::from_millis(200))
            .standby_poll(Duration::from_millis(200))
            .backoff(Duration::from_millis(50), Duration::from_secs(1))
            .publish_timeout(Duration::from_secs(5));
        NatsRelay::new(store, client, config).map_err(|e| DeploymentError::Config(e.to_string()))
    }

    /// The ledger's runner on JetStream: park poison after three attempts; lag measured
    /// every second.
    ///
    /// # Errors
    ///
    /// [`DeploymentError`] when the projection or the runner refuses its configuration.
    pub fn runner(&self, store: PgEventStore, client: async_nats::Client) -> Result<LedgerRunner, DeploymentError> {
        let jetstream = async_nats::jetstream::new(client);
        let feed = JetStreamFeed::new(jetstream, self.stream.clone(), self.scheme()?);
        self.runner_on(store, feed)
    }

    /// The ledger's runner on the PostgreSQL feed, otherwise like [`runner`](Self::runner).
    ///
    /// # Errors
    ///
    /// [`DeploymentError`] when the projection or the runner refuses its configuration.
    pub fn pg_runner(&self, store: PgEventStore) -> Result<CheckRunner, DeploymentError> {
        let feed = PgLogFeed::new(store.clone(), self.partitions)?;
        self.runner_on(store, feed)
    }

    fn runner_on<F: tidemark_projections::Feed>(
        &self,
        store: PgEventStore,
        feed: F,
    ) -> Result<LedgerRunner<F>, DeploymentError> {
        let read_models = PgReadModels::new(&store);
        let config = RunnerConfig::default()
            .backoff(Duration::from_millis(20), Duration::from_millis(500))
            .rebalance_interval(Duration::from_millis(200))
            .lag_interval(Duration::from_secs(1))
            .poison(PoisonPolicy::Park, 3);
        let projection = LedgerProjection::new().map_err(|e| DeploymentError::Config(e.to_string()))?;
        Ok(ProjectionRunner::new(projection, read_models, store, feed, config)?)
    }
}

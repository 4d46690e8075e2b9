//! `--database-url` and friends: where the PostgreSQL + JetStream deployment lives.
//!
//! Mounted only on the subcommands that reach the deployment (and, without `global`, on
//! the bare command), so that `orders token --help` does not list them.

use clap::Args;

use super::nats::NatsArgs;
use crate::runtime::{FeedChoice, PgOptions};
use crate::secret::SecretUrl;

/// Where the PostgreSQL + JetStream deployment lives. Setting DATABASE_URL selects it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Deployment (PostgreSQL + JetStream)")]
pub struct DeploymentArgs {
    /// PostgreSQL URL, such as postgres://postgres@127.0.0.1/test. Without it, the
    /// embedded mode.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<SecretUrl>,
    /// Schema of the store; read models live in `<schema>_<projection>`.
    #[arg(long, env = "ORDERS_SCHEMA", global = true, default_value = PgOptions::SCHEMA)]
    pub schema: String,
    /// Where NATS is, and how to reach it.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// JetStream stream name. (Not `--stream`: `projections rebuild --stream` names an event stream.)
    #[arg(long, env = "ORDERS_JETSTREAM_STREAM", global = true, default_value = PgOptions::STREAM)]
    pub jetstream_stream: String,
    /// Subject prefix: <prefix>.<partition>.<category>.<EventType>.v<N>.
    #[arg(long, env = "ORDERS_SUBJECT_PREFIX", global = true, default_value = PgOptions::SUBJECT_PREFIX)]
    pub subject_prefix: String,
    /// JetStream KV bucket the order summaries are published to [default: <jetstream stream>_SUMMARY].
    #[arg(long, env = "ORDERS_SUMMARY_BUCKET", global = true)]
    pub summary_bucket: Option<String>,
    /// Serve metrics in Prometheus format on this address (`GET /metrics`), e.g. 127.0.0.1:9100.
    #[arg(long, env = "ORDERS_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `relay` and `projections run`: serve `GET /livez` and `GET /readyz` on this address,
    /// e.g. 127.0.0.1:9101 (`serve` answers them on its own address).
    #[arg(long, env = "ORDERS_HEALTH_ADDR", global = true)]
    pub health_addr: Option<std::net::SocketAddr>,
    /// Where the consumers read events from: `jetstream` (a relay publishes the log to
    /// JetStream) or `postgres` (each consumer reads the store's log itself: no relay, no
    /// NATS).
    #[arg(long, env = "ORDERS_FEED", global = true, value_enum, default_value_t = FeedChoice::Jetstream)]
    pub feed: FeedChoice,
    /// Partitions of subjects and consumers; choose once per deployment.
    #[arg(long, env = "ORDERS_PARTITIONS", global = true, default_value_t = PgOptions::PARTITIONS)]
    pub partitions: u32,
}

impl DeploymentArgs {
    /// The PostgreSQL + JetStream options, or `None` for the embedded mode.
    pub fn postgres(&self) -> Option<PgOptions> {
        let url = self.database_url.as_ref().filter(|url| !url.expose().trim().is_empty())?;
        let options = PgOptions::new(url.expose())
            .schema(&self.schema)
            .nats(self.nats.connect_options())
            .stream(&self.jetstream_stream, &self.subject_prefix)
            .partitions(self.partitions)
            .feed(self.feed);
        Some(match &self.summary_bucket {
            Some(bucket) => options.with_summary_bucket(bucket),
            None => options,
        })
    }
}

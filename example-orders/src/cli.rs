//! The command line of the `orders` binary (in the library so that tests can parse it).
//!
//! The ops commands of `tidemark-projections` are mounted under their own names:
//! `projections list|status|rebuild|reset` next to this app's `projections run`,
//! and `dlq …`, `events verify`, `stream show`.

mod nats;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tidemark_projections::{DlqCommand, EventsCommand, OpsCommand, ProjectionsCommand, StreamCommand};

use crate::auth::{AuthError, TokenKeys};
use crate::runtime::{PgOptions, Role};
use crate::secret::{Secret, SecretUrl};

pub use nats::NatsArgs;

/// The tidemark sample app: orders over HTTP and WebSocket.
///
/// With no arguments it serves the embedded mode on 127.0.0.1:8080: an in-memory event
/// store, an in-process bus and in-memory read models, with the v1 fixture imported.
/// With DATABASE_URL it runs on PostgreSQL + NATS JetStream: `orders migrate` once,
/// then `orders serve --all` (or `serve`, `relay` and `projections run` apart).
#[derive(Debug, Parser)]
#[command(name = "orders", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app over HTTP and WebSocket (the default).
    Serve(ServeArgs),
    /// Publish the store's log to JetStream (PostgreSQL mode). Run one or more: one leads.
    Relay,
    /// Run the projections and the process manager, or operate on projections.
    #[command(subcommand)]
    Projections(ProjectionsArgs),
    /// Dead letters: list, retry or skip parked streams.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Stored events: `events verify` runs each one through its upcasters and decoder.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Streams: `stream show ID` prints a stream's events as stored.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Apply the PostgreSQL migrations and create or update the JetStream stream.
    Migrate,
    /// Append realistic orders through the command handlers (PostgreSQL mode).
    Seed(SeedArgs),
    /// Print a bearer token for a user.
    Token(TokenArgs),
}

/// `projections …`: `run`, and the ops commands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsArgs {
    /// Run the read models and the process manager until Ctrl-C or SIGTERM (PostgreSQL
    /// mode). Several processes share the partitions.
    Run(RunArgs),
    #[command(flatten)]
    Ops(ProjectionsCommand),
}

impl Command {
    /// The ops command of `tidemark-projections` this is, if it is one.
    pub fn ops(&self) -> Option<OpsCommand> {
        match self {
            Self::Projections(ProjectionsArgs::Ops(command)) => Some(OpsCommand::Projections(command.clone())),
            Self::Dlq(command) => Some(OpsCommand::Dlq(command.clone())),
            Self::Events(command) => Some(OpsCommand::Events(command.clone())),
            Self::Stream(command) => Some(OpsCommand::Stream(command.clone())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDERS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Fraction (0 to 1) of command requests that fail with 500 on purpose, before or
    /// after the command runs.
    #[arg(long, env = "ORDERS_CHAOS", default_value_t = 0.0, value_parser = fraction)]
    pub chaos: f64,
    /// Start without importing the v1 fixture (embedded: start empty).
    #[arg(long)]
    pub no_fixture: bool,
    /// PostgreSQL mode: also run the relay and every consumer in this process. (The
    /// embedded mode always runs everything in one process.)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run only this consumer: orders, sales, fulfilment-queue, pm-fulfilment or pm-shipping.
    #[arg(long)]
    pub only: Option<String>,
}

impl RunArgs {
    /// The role of a `projections run` process.
    pub fn role(&self) -> Role {
        Role::Back { only: self.only.clone() }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many orders to place.
    #[arg(long, default_value_t = 100)]
    pub orders: usize,
    /// Orders on their way at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seed of the random mix (default: random).
    #[arg(long)]
    pub rng_seed: Option<u64>,
}

/// Where the PostgreSQL + JetStream deployment lives. Setting DATABASE_URL selects it.
#[derive(Debug, Clone, Args)]
pub struct DeploymentArgs {
    /// PostgreSQL URL, such as postgres://postgres@127.0.0.1/test. Without it, the
    /// embedded mode.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<SecretUrl>,
    /// Schema of the store; read models live in `<schema>_<projection>`.
    #[arg(long, env = "ORDERS_SCHEMA", global = true, default_value = PgOptions::SCHEMA)]
    pub schema: String,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// JetStream stream name. (Not `--stream`: `projections rebuild --stream` names an event stream.)
    #[arg(long, env = "ORDERS_JETSTREAM_STREAM", global = true, default_value = PgOptions::STREAM)]
    pub jetstream_stream: String,
    /// Subject prefix: <prefix>.<partition>.<category>.<EventType>.v<N>.
    #[arg(long, env = "ORDERS_SUBJECT_PREFIX", global = true, default_value = PgOptions::SUBJECT_PREFIX)]
    pub subject_prefix: String,
    /// Serve metrics in Prometheus format on this address (`GET /metrics`), e.g. 127.0.0.1:9100.
    #[arg(long, env = "ORDERS_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Partitions of subjects and consumers; choose once per deployment.
    #[arg(long, env = "ORDERS_PARTITIONS", global = true, default_value_t = PgOptions::PARTITIONS)]
    pub partitions: u32,
}

impl DeploymentArgs {
    /// The PostgreSQL + JetStream options, or `None` for the embedded mode.
    pub fn postgres(&self) -> Option<PgOptions> {
        let url = self.database_url.as_ref().filter(|url| !url.expose().trim().is_empty())?;
        Some(
            PgOptions::new(url.expose())
                .schema(&self.schema)
                .nats(self.nats.connect_options())
                .stream(&self.jetstream_stream, &self.subject_prefix)
                .partitions(self.partitions),
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user name (1 to 128 ASCII letters, digits, '.', '_', '-', '@', '+').
    pub user: String,
    /// Give the token the admin role (ops endpoints).
    #[arg(long)]
    pub admin: bool,
    /// How long the token is valid, in hours.
    #[arg(long, default_value_t = 720)]
    pub ttl_hours: u64,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// The HMAC secret that signs tokens (at least 32 bytes). Without one, a published dev
    /// secret is used and the dev login endpoint is enabled: never do that in production.
    #[arg(long = "token-secret", env = "ORDERS_TOKEN_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,
}

impl SecretArgs {
    /// The keys: from the configured secret, or the dev keys with a warning.
    pub fn keys(&self) -> Result<TokenKeys, AuthError> {
        match &self.secret {
            Some(secret) => TokenKeys::new(secret.expose().as_bytes()),
            None => {
                tracing::warn!("no token secret configured (--token-secret or ORDERS_TOKEN_SECRET): using the published dev secret; dev login is enabled");
                Ok(TokenKeys::dev())
            }
        }
    }
}

impl TokenArgs {
    /// The token's lifetime.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_hours.saturating_mul(3600))
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("a fraction between 0 and 1".to_owned())
    }
}

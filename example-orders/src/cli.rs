//! The command line of the `orders` binary (in the library so that tests can parse it).
//!
//! The ops commands of `tidemark-projections` are mounted under their own names:
//! `projections list|status|audit|pause|resume|rebuild|replay|reset` next to this app's
//! `projections run`, `relay status|reset` next to this app's bare `relay`, `migrate
//! --check|--print-sql` beside this app's `migrate`, and `dlq …`, `events verify`,
//! `stream show`. Each subcommand lists only the flags it
//! uses: the deployment's flags are mounted on the commands that reach it.

mod deployment;
mod examples;
mod nats;
mod ops;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, FromArgMatches as _, Parser, Subcommand};
use tidemark_projections::OpsCommand;

use crate::auth::{AuthError, TokenKeys};
use crate::secret::Secret;

pub use deployment::DeploymentArgs;
pub use nats::NatsArgs;
pub use ops::{DlqArgs, EventsArgs, MigrateGroup, ProjectionsArgs, ProjectionsGroup, RelayGroup, RunArgs, StreamArgs};

/// The tidemark sample app: orders over HTTP and WebSocket.
///
/// With no arguments it serves the whole app on 127.0.0.1:8080. Without DATABASE_URL that
/// is the embedded mode: an in-memory event store, an in-process bus and in-memory read
/// models, with the v1 fixture imported. With DATABASE_URL it runs on PostgreSQL + NATS
/// JetStream, relay and consumers in the same process: `orders migrate` once, then
/// `orders`. To run the parts apart: `serve --front`, `relay` and `projections run`.
#[derive(Debug, Parser)]
#[command(name = "orders", version, args_conflicts_with_subcommands = true, after_help = examples::ORDERS)]
pub struct Cli {
    /// What to run (none: serve the whole app).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The bare command's flags: those of `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The clap command. The bare command's flags (those of `serve`) stay its own: they
    /// are not passed down to the subcommands, each of which mounts the flags it uses.
    pub fn clap() -> clap::Command {
        <Self as clap::CommandFactory>::command().mut_args(|arg| arg.global(false))
    }

    /// Parses the process's arguments; prints help or an error and exits (2) on a usage error.
    pub fn parse() -> Self {
        Self::try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// Parses `args` (the first being the program's name).
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Self::clap();
        let matches = command.try_get_matches_from_mut(args)?;
        Self::from_arg_matches(&matches).map_err(|error| error.format(&mut command))
    }

    /// The command to run: the bare command serves.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }

    /// The deployment flags of the command given (or of the bare command), if it has them.
    pub fn deployment(&self) -> Option<&DeploymentArgs> {
        self.command.as_ref().map_or(Some(&self.serve.deployment), Command::deployment)
    }
}

/// The commands of `orders`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the whole app (the default): HTTP and WebSocket, and with DATABASE_URL the
    /// relay and every consumer too; `--front` serves HTTP only.
    #[command(after_help = examples::SERVE)]
    Serve(ServeArgs),
    /// Publish the store's log to JetStream (PostgreSQL mode). Run one or more: one leads.
    /// `relay status` and `relay reset` operate on it.
    Relay(RelayGroup),
    /// Run the projections and the process manager, or operate on projections.
    Projections(ProjectionsGroup),
    /// Dead letters: list, retry or skip parked streams.
    Dlq(DlqArgs),
    /// Stored events: `events verify` runs each one through its upcasters and decoder.
    Events(EventsArgs),
    /// Streams: `stream show ID` prints a stream's events as stored.
    Stream(StreamArgs),
    /// Apply the PostgreSQL migrations and create or update the JetStream stream;
    /// `--check` and `--print-sql` only report the pending migrations.
    Migrate(MigrateGroup),
    /// Append realistic orders through the command handlers (PostgreSQL mode).
    #[command(after_help = examples::SEED)]
    Seed(SeedArgs),
    /// Erase a customer's personal data (PostgreSQL mode): destroy the key that seals
    /// their delivery contacts, delete their orders' snapshots and rebuild the orders and
    /// sales read models, which show "[forgotten]" in their place. It cannot be undone.
    #[command(after_help = examples::FORGET)]
    Forget(ForgetArgs),
    /// Print a bearer token for a user.
    #[command(after_help = examples::TOKEN)]
    Token(TokenArgs),
    /// Print a shell completion script to standard output.
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    #[command(after_help = examples::MAN)]
    Man,
}

impl Command {
    /// The ops command of `tidemark-projections` this is, if it is one.
    pub fn ops(&self) -> Option<OpsCommand> {
        match self {
            Self::Projections(group) => group.ops(),
            Self::Dlq(args) => Some(OpsCommand::Dlq(args.command.clone())),
            Self::Events(args) => Some(OpsCommand::Events(args.command.clone())),
            Self::Stream(args) => Some(OpsCommand::Stream(args.command.clone())),
            Self::Relay(group) => group.command.clone().map(OpsCommand::Relay),
            Self::Migrate(group) => group.ops(),
            _ => None,
        }
    }

    /// The tenant an ops command is limited to (`--tenant`), if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::Events(EventsArgs { tenant, .. }) | Self::Stream(StreamArgs { tenant, .. }) => tenant.as_deref(),
            _ => None,
        }
    }

    /// The deployment flags of this command, if it has them.
    pub fn deployment(&self) -> Option<&DeploymentArgs> {
        match self {
            Self::Serve(args) => Some(&args.deployment),
            Self::Relay(RelayGroup { deployment, .. }) | Self::Migrate(MigrateGroup { deployment, .. }) => {
                Some(deployment)
            }
            Self::Projections(group) => Some(&group.deployment),
            Self::Dlq(DlqArgs { deployment, .. })
            | Self::Events(EventsArgs { deployment, .. })
            | Self::Stream(StreamArgs { deployment, .. }) => Some(deployment),
            Self::Seed(args) => Some(&args.deployment),
            Self::Forget(args) => Some(&args.deployment),
            Self::Token(_) | Self::Completions { .. } | Self::Man => None,
        }
    }
}

/// `serve` (and the bare command).
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
    /// PostgreSQL mode: serve HTTP and WebSocket only (and the notifier, which pushes to
    /// this process's sockets); run `orders relay` and `orders projections run` apart.
    #[arg(long)]
    pub front: bool,
    /// The secret tokens are signed with.
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `seed`.
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
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `forget`.
#[derive(Debug, Clone, Args)]
pub struct ForgetArgs {
    /// The customer (the user name orders were placed under).
    pub customer: String,
    /// Confirm: the customer's personal data is destroyed for good.
    #[arg(long)]
    pub yes: bool,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user name (1 to 128 ASCII letters, digits, '.', '_', '-', '@', '+').
    pub user: String,
    /// Give the token the admin role (ops endpoints).
    #[arg(long)]
    pub admin: bool,
    /// The user's tenant (1 to 32 lowercase ASCII letters, digits, '_' or '-'); without
    /// it, the default tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// How long the token is valid, in hours.
    #[arg(long, default_value_t = 720)]
    pub ttl_hours: u64,
    /// The secret the token is signed with.
    #[command(flatten)]
    pub secret: SecretArgs,
}

/// The token secret, shared by `serve` and `token`.
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

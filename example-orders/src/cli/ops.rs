//! The ops commands of `tidemark-projections`, mounted under this app's names, each group
//! with the deployment flags its commands need.

use clap::{Args, Subcommand};
use tidemark_projections::{
    DlqCommand, EventsCommand, MigrateArgs, OpsCommand, ProjectionsCommand, RelayCommand, StreamCommand,
};

use super::examples;
use super::DeploymentArgs;
use crate::runtime::Role;

/// `projections …`: this app's `projections run`, and the ops commands.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::PROJECTIONS)]
pub struct ProjectionsGroup {
    /// What to do.
    #[command(subcommand)]
    pub command: ProjectionsArgs,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// The subcommands of `projections`.
#[derive(Debug, Clone, Subcommand)]
pub enum ProjectionsArgs {
    /// Run the read models and the process manager until Ctrl-C or SIGTERM (PostgreSQL
    /// mode). Several processes share the partitions.
    #[command(after_help = examples::PROJECTIONS_RUN)]
    Run(RunArgs),
    /// The library's projection commands (list, status, rebuild, …).
    #[command(flatten)]
    Ops(ProjectionsCommand),
}

/// `projections run`.
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

/// `dlq …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::DLQ)]
pub struct DlqArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DlqCommand,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `events …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::EVENTS)]
pub struct EventsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EventsCommand,
    /// Only this tenant's streams: the command runs over the tenant's view of the store,
    /// where another tenant's streams read as empty and refuse a tombstone.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `stream …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::STREAM)]
pub struct StreamArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: StreamCommand,
    /// Only this tenant's streams: the command runs over the tenant's view of the store,
    /// where another tenant's streams read as empty and refuse a tombstone.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `relay`: runs the relay, or with a subcommand operates on it.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::RELAY)]
pub struct RelayGroup {
    /// What to do (none: run the relay).
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `migrate`: applies the migrations (and creates the JetStream stream), or with
/// `--check` or `--print-sql` only reports them.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::MIGRATE)]
pub struct MigrateGroup {
    /// What to check or print instead of migrating.
    #[command(flatten)]
    pub args: MigrateArgs,
    /// Where the deployment's services are.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

impl MigrateGroup {
    /// The ops command this is, when it only reports (`--check`, `--print-sql`).
    pub fn ops(&self) -> Option<OpsCommand> {
        (self.args.check || self.args.print_sql).then_some(OpsCommand::Migrate(self.args))
    }
}

impl ProjectionsGroup {
    /// The ops command this is, unless it is `projections run`.
    pub fn ops(&self) -> Option<OpsCommand> {
        match &self.command {
            ProjectionsArgs::Ops(command) => Some(OpsCommand::Projections(command.clone())),
            ProjectionsArgs::Run(_) => None,
        }
    }
}

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
    #[command(subcommand)]
    pub command: ProjectionsArgs,
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
    #[command(flatten)]
    Ops(ProjectionsCommand),
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

/// `dlq …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::DLQ)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `events …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::EVENTS)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `stream …`.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::STREAM)]
pub struct StreamArgs {
    #[command(subcommand)]
    pub command: StreamCommand,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `relay`: runs the relay, or with a subcommand operates on it.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::RELAY)]
pub struct RelayGroup {
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// `migrate`: applies the migrations (and creates the JetStream stream), or with
/// `--check` or `--print-sql` only reports them.
#[derive(Debug, Clone, Args)]
#[command(after_help = examples::MIGRATE)]
pub struct MigrateGroup {
    #[command(flatten)]
    pub args: MigrateArgs,
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

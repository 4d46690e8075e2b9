//! The `orders` binary: serves the sample app, runs its relay and consumers, operates on
//! its projections, seeds traffic, prints tokens. See the README for the walkthrough.

mod commands;

use std::process::ExitCode;

use clap::Parser as _;
use example_orders::cli::{Cli, Command};

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tidemark_projections=warn,async_nats=warn,sqlx=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Token(args)) => commands::token(&args),
        command => run(command.unwrap_or(Command::Serve(cli.serve)), &cli.deployment),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

#[tokio::main]
async fn run(command: Command, deployment: &example_orders::cli::DeploymentArgs) -> anyhow::Result<ExitCode> {
    commands::run(command, deployment).await
}

//! The `orders` binary: serves the sample app, runs its relay and consumers, operates on
//! its projections, seeds traffic, prints tokens. See the README for the walkthrough.

mod commands;

use std::process::ExitCode;

use example_orders::cli::{Cli, Command};

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tidemark_projections=warn,async_nats=warn,sqlx=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match Cli::parse().into_command() {
        Command::Token(args) => commands::token(&args),
        Command::Completions { shell } => commands::completions(shell),
        Command::Man => commands::man(),
        command => run(command),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

#[tokio::main]
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    commands::run(command).await
}

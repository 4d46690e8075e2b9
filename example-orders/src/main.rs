//! The `orders` binary: serves the sample app, runs its relay and consumers, operates on
//! its projections, seeds traffic, prints tokens. See the README for the walkthrough.

mod commands;

use std::process::ExitCode;

use example_orders::cli::{Cli, Command};

fn main() -> ExitCode {
    let _telemetry = match example_orders::telemetry::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
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

//! Metrics of command handling through the `metrics` facade (a no-op until the
//! application installs a recorder).

use std::time::Duration;

use crate::command::CommandError;
use crate::error::Error;
use crate::store::AppendOutcome;

/// Commands handled, by aggregate category and outcome.
pub const COMMANDS_TOTAL: &str = "tidemark_commands_total";
/// How long handling a command took (load, decide, append, retries), by category.
pub const COMMAND_SECONDS: &str = "tidemark_command_seconds";

/// Describes the metrics of this crate to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    metrics::describe_counter!(
        COMMANDS_TOTAL,
        "Commands handled by CommandHandler, by aggregate category and outcome: appended, duplicate (an earlier \
         outcome of the same command id), rejected (the aggregate refused), conflict, error"
    );
    metrics::describe_histogram!(
        COMMAND_SECONDS,
        metrics::Unit::Seconds,
        "Time to handle a command: load, decide, append, and retries after conflicts"
    );
}

/// The outcome label of a handled command.
fn outcome<E: std::error::Error + 'static>(result: &Result<AppendOutcome, CommandError<E>>) -> &'static str {
    match result {
        Ok(outcome) if outcome.duplicate => "duplicate",
        Ok(_) => "appended",
        Err(CommandError::Rejected(_)) => "rejected",
        Err(CommandError::Store(Error::Conflict { .. })) => "conflict",
        Err(_) => "error",
    }
}

pub(crate) fn command_handled<E: std::error::Error + 'static>(
    category: &'static str,
    result: &Result<AppendOutcome, CommandError<E>>,
    took: Duration,
) {
    record_command(category, outcome(result), took);
}

/// Counts a command handled outside [`CommandHandler`](crate::CommandHandler) (such as one
/// decided in a request and appended later) under the same metrics: `outcome` is one of
/// `appended`, `duplicate`, `rejected`, `conflict` or `error`.
pub fn record_command(category: &'static str, outcome: &'static str, took: Duration) {
    metrics::counter!(COMMANDS_TOTAL, "category" => category, "outcome" => outcome).increment(1);
    metrics::histogram!(COMMAND_SECONDS, "category" => category).record(took.as_secs_f64());
}

//! Metrics of the PostgreSQL store through the `metrics` facade.

use std::time::Duration;

use tidemark::{AppendOutcome, Error};

/// Append requests, by outcome: `appended`, `duplicate` (a command id already stored),
/// `conflict` (the stream was not at the expected version) or `error`.
pub const APPENDS_TOTAL: &str = "tidemark_store_appends_total";
/// Events written by appends.
pub const APPENDED_EVENTS_TOTAL: &str = "tidemark_store_appended_events_total";
/// How long an append request took, group-commit wait included.
pub const APPEND_SECONDS: &str = "tidemark_store_append_seconds";

/// Describes the metrics of this crate to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    metrics::describe_counter!(
        APPENDS_TOTAL,
        "Append requests to the PostgreSQL store, by outcome: appended, duplicate, conflict (stream not at the \
         expected version), error"
    );
    metrics::describe_counter!(APPENDED_EVENTS_TOTAL, "Events written to the PostgreSQL store");
    metrics::describe_histogram!(
        APPEND_SECONDS,
        metrics::Unit::Seconds,
        "Time of an append request to the PostgreSQL store, group-commit wait included"
    );
}

/// Counts an append and returns its outcome label.
pub(crate) fn appended(result: &Result<AppendOutcome, Error>, events: usize, took: Duration) -> &'static str {
    let outcome = match result {
        Ok(outcome) if outcome.duplicate => "duplicate",
        Ok(_) => "appended",
        Err(Error::Conflict { .. }) => "conflict",
        Err(_) => "error",
    };
    metrics::counter!(APPENDS_TOTAL, "outcome" => outcome).increment(1);
    if matches!(result, Ok(outcome) if !outcome.duplicate) {
        metrics::counter!(APPENDED_EVENTS_TOTAL).increment(events as u64);
    }
    metrics::histogram!(APPEND_SECONDS).record(took.as_secs_f64());
    outcome
}

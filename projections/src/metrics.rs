//! Metrics of the runtime through the `metrics` facade; the README lists them.

use std::time::Duration;

use chrono::Utc;

use crate::feed::Incoming;
use crate::lag::Lag;
use crate::rebuild::RebuildProgress;
use crate::worker::BatchReport;

/// Unix time of a projection's last committed batch, in seconds.
pub const LAST_COMMIT: &str = "tidemark_projection_last_commit_timestamp_seconds";
/// Unix time of a projection's last lag measurement, in seconds: the lag gauges are only
/// as fresh as it.
pub const LAG_MEASURED: &str = "tidemark_projection_lag_measured_timestamp_seconds";

/// Describes the metrics of this crate to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "tidemark_projection_events_total",
        "Events a projection took in, by outcome: applied, skipped, duplicate, repaired, rogue, dead_lettered"
    );
    describe_histogram!("tidemark_projection_batch_events", Unit::Count, "Messages per committed projection batch");
    describe_histogram!("tidemark_projection_batch_seconds", Unit::Seconds, "Time to apply and commit a batch");
    describe_histogram!(
        "tidemark_projection_apply_latency_seconds",
        Unit::Seconds,
        "Time from the commit of a batch's last event in the store to the commit of the batch"
    );
    describe_gauge!(
        "tidemark_projection_lag_events",
        Unit::Count,
        "Events up to the log's head a projection has not taken in, as last measured"
    );
    describe_gauge!(
        "tidemark_projection_lag_seconds",
        Unit::Seconds,
        "Age of the oldest event a projection has not taken in, as last measured"
    );
    describe_gauge!(LAG_MEASURED, Unit::Seconds, "Unix time of the last lag measurement of a projection");
    describe_gauge!(LAST_COMMIT, Unit::Seconds, "Unix time of a projection's last committed batch in this process");
    describe_counter!(
        "tidemark_projection_speculations_total",
        "Batches applied before they were checked: kept, undone"
    );
    describe_counter!("tidemark_projection_failures_total", "Projection batches that failed and were retried");
    describe_counter!("tidemark_rebuild_events_total", "Events applied by projection rebuilds");
    describe_gauge!("tidemark_rebuild_remaining_events", Unit::Count, "Events a running rebuild estimates it has left");
}

pub(crate) fn batch_committed(projection: &str, batch: &[Incoming], report: &BatchReport, took: Duration) {
    let outcomes = [
        ("applied", report.applied),
        ("skipped", report.skipped),
        ("duplicate", report.duplicates),
        ("repaired", report.repaired),
        ("rogue", report.rogue),
        ("dead_lettered", report.dead_lettered),
    ];
    for (outcome, count) in outcomes.into_iter().filter(|(_, n)| *n > 0) {
        let labels = [("projection", projection.to_owned()), ("outcome", outcome.to_owned())];
        metrics::counter!("tidemark_projection_events_total", &labels).increment(count);
    }
    let labels = [("projection", projection.to_owned())];
    metrics::gauge!(LAST_COMMIT, &labels).set(unix_now());
    metrics::histogram!("tidemark_projection_batch_events", &labels).record(batch.len() as f64);
    metrics::histogram!("tidemark_projection_batch_seconds", &labels).record(took.as_secs_f64());
    let last = batch.iter().rev().find_map(|m| match m {
        Incoming::Untrusted(e) | Incoming::Trusted(e) => Some(e.recorded_at),
        _ => None,
    });
    if let Some(recorded_at) = last {
        let latency = (Utc::now() - recorded_at).to_std().unwrap_or_default();
        metrics::histogram!("tidemark_projection_apply_latency_seconds", &labels).record(latency.as_secs_f64());
    }
}

/// A lag measurement: measured on a timer, so the gauges move while nothing commits.
pub(crate) fn lag_measured(projection: &str, lag: &Lag) {
    let labels = [("projection", projection.to_owned())];
    metrics::gauge!("tidemark_projection_lag_events", &labels).set(lag.events as f64);
    metrics::gauge!("tidemark_projection_lag_seconds", &labels).set(lag.oldest_age.as_secs_f64());
    metrics::gauge!(LAG_MEASURED, &labels).set(unix_now());
}

fn unix_now() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}

/// A batch applied before it was checked: kept, or undone and applied again.
pub(crate) fn speculation(projection: &str, outcome: &'static str) {
    let labels = [("projection", projection.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!("tidemark_projection_speculations_total", &labels).increment(1);
}

pub(crate) fn batch_failed(projection: &str) {
    metrics::counter!("tidemark_projection_failures_total", "projection" => projection.to_owned()).increment(1);
}

pub(crate) fn rebuild_progress(projection: &str, batch: u64, progress: &RebuildProgress) {
    let labels = [("projection", projection.to_owned())];
    metrics::counter!("tidemark_rebuild_events_total", &labels).increment(batch);
    metrics::gauge!("tidemark_rebuild_remaining_events", &labels).set(progress.remaining_estimate() as f64);
}

//! Metrics of the runtime through the `metrics` facade; the README lists them.

use std::time::Duration;

use chrono::Utc;

use crate::feed::Incoming;
use crate::lag::Lag;
use crate::rebuild::RebuildProgress;
use crate::worker::BatchReport;

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

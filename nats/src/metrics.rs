//! Metrics of the relay and the feed through the `metrics` facade: their names, and
//! their `# HELP` texts for the installed recorder.

use std::time::Duration;

/// 1 while this process's relay leads (publishing, or retrying after a failure), else 0.
pub const RELAY_LEADER: &str = "tidemark_relay_leader";
/// How long the relay has found nothing readable while committed events were held back
/// behind an older running transaction (0 when none are).
pub const RELAY_HELD_BACK_SECONDS: &str = "tidemark_relay_held_back_seconds";

/// Describes the metrics of this crate to the installed recorder (their `# HELP` lines).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(RELAY_LEADER, "1 while this process's relay holds the leadership (publishing or retrying), else 0");
    describe_gauge!(
        RELAY_HELD_BACK_SECONDS,
        Unit::Seconds,
        "How long the relay has been waiting on committed events held back behind an older running transaction"
    );
    describe_counter!("tidemark_relay_published_total", "Events sent to JetStream by the relay, republishes included");
    describe_counter!("tidemark_relay_acked_total", "JetStream PubAcks of the relay's events, duplicates included");
    describe_counter!("tidemark_relay_duplicates_total", "PubAcks reporting an event JetStream already held");
    describe_counter!("tidemark_relay_failures_total", "Relay failures that led to a retry");
    describe_gauge!(
        "tidemark_relay_checkpoint_sequence",
        "Log sequence of the relay's checkpoint as last loaded or saved"
    );
    describe_histogram!(
        "tidemark_relay_lag_seconds",
        Unit::Seconds,
        "Time from an event's commit to the PubAck of its last message"
    );
    describe_counter!(
        "tidemark_feed_signatures_total",
        "Messages taken from JetStream by signature check outcome: valid, missing, invalid"
    );
}

/// Exports the relay's counters of rare events at zero from the start, so that rates and
/// alerts over them have a series before the first one happens.
pub(crate) fn relay_started() {
    metrics::counter!("tidemark_relay_failures_total").increment(0);
    metrics::counter!("tidemark_relay_duplicates_total").increment(0);
}

/// Sets the leader gauge; a relay that does not lead holds nothing back either.
pub(crate) fn leader(leads: bool) {
    metrics::gauge!(RELAY_LEADER).set(if leads { 1.0 } else { 0.0 });
    if !leads {
        held_back(Duration::ZERO);
    }
}

pub(crate) fn held_back(for_: Duration) {
    metrics::gauge!(RELAY_HELD_BACK_SECONDS).set(for_.as_secs_f64());
}

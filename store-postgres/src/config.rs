//! Configuration of the PostgreSQL store.

use std::time::Duration;

use tidemark::DEFAULT_MAX_EVENT_BYTES;

use crate::error::SetupError;

/// Options of a [`PgEventStore`](crate::PgEventStore).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgStoreConfig {
    /// The schema holding every table of the store (default `tidemark`). Lowercase
    /// ASCII letters, digits and `_`, starting with a letter or `_`, at most 48 bytes.
    pub schema: String,
    /// Largest accepted event, payload plus metadata, in bytes (default 512 KiB).
    pub max_event_bytes: usize,
    /// How often a waiting log reader polls when no wake-up arrives (default 250 ms).
    pub poll_interval: Duration,
    /// Whether appends wake readers in other processes with a coalesced NOTIFY after
    /// commit (default true). Readers in the same process are always woken directly.
    pub notify: bool,
    /// Shortest time between two NOTIFYs (default zero). One NOTIFY is in flight at a
    /// time either way, and the appends committed while it is on its way share the next
    /// one. A non-zero interval caps the NOTIFY rate further, but delays the wake-up of
    /// an append that comes within it by up to the interval plus the timer's resolution
    /// (1 ms): 1 ms here added 0.6 ms to the relay's median hop at 800 appends/s.
    pub notify_interval: Duration,
    /// Pool size used by [`PgEventStore::connect`](crate::PgEventStore::connect) (default 16).
    pub max_connections: u32,
    /// How often an append with `ExpectedVersion::Any` or `StreamExists` is retried
    /// when a concurrent append takes its version (default 10).
    pub race_retries: u32,
    /// Whether concurrent appends to different streams share one statement and one
    /// commit (default true). Each append keeps its own expected-version check and
    /// outcome; if the shared statement fails, each append is retried on its own. Pays
    /// under many concurrent writers; a lone append goes out at once, as without it. A
    /// batch whose appends all expect no stream or an exact version goes out as a plain
    /// `INSERT … SELECT` (with their command ids, if any, recorded beside it), cheaper for
    /// the server; any other batch takes a general statement that also checks
    /// `Any`/`StreamExists`.
    pub group_commit: bool,
    /// Most appends in one group commit (default 64).
    pub max_batch: usize,
    /// Group commits running at once, each on its own connection (default 4).
    pub batches_in_flight: usize,
    /// Events that must be waiting before a group commit starts while another is in
    /// flight (default 16). Smaller appends then gather behind the batch in flight into
    /// a larger one: fewer statements and commits for the same work, for a wait of up to
    /// one batch's duration under moderate load. Large appends still run side by side.
    /// 1 starts a batch for any waiting append as soon as a slot is free.
    pub overlap_events: usize,
    /// Longest that waiting appends stay behind a statement in flight before a batch
    /// starts beside it anyway (default 5 ms): a statement held up by a lock or a slow
    /// server does not hold every other append back.
    pub overlap_wait: Duration,
    pub(crate) gap_safe: bool,
}

impl Default for PgStoreConfig {
    fn default() -> Self {
        Self {
            schema: "tidemark".to_owned(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            poll_interval: Duration::from_millis(250),
            notify: true,
            notify_interval: Duration::ZERO,
            max_connections: 16,
            race_retries: 10,
            group_commit: true,
            max_batch: 64,
            batches_in_flight: 4,
            overlap_events: 16,
            overlap_wait: Duration::from_millis(5),
            gap_safe: true,
        }
    }
}

impl PgStoreConfig {
    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the event size limit, in bytes.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Sets the polling interval of waiting readers.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Turns the cross-process NOTIFY after appends on or off.
    pub fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Sets the shortest time between two NOTIFYs (default zero; see the field of the
    /// same name).
    pub fn notify_interval(mut self, interval: Duration) -> Self {
        self.notify_interval = interval;
        self
    }

    /// Sets the pool size used by `connect`.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the retries of `Any`/`StreamExists` appends that lose a race.
    pub fn race_retries(mut self, n: u32) -> Self {
        self.race_retries = n;
        self
    }

    /// Turns group commit on or off.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// Sets the most appends per group commit and how many run at once.
    pub fn group_commit_limits(mut self, max_batch: usize, in_flight: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self.batches_in_flight = in_flight.max(1);
        self
    }

    /// Sets how many events must be waiting before a group commit starts beside another
    /// statement in flight, and how long at most they wait for it (see
    /// [`overlap_events`](Self::overlap_events) and [`overlap_wait`](Self::overlap_wait)).
    pub fn group_commit_overlap(mut self, events: usize, wait: Duration) -> Self {
        self.overlap_events = events.max(1);
        self.overlap_wait = wait;
        self
    }

    /// Removes the gap-safety condition from log reads. Never use this: it exists so
    /// the test suite can show that its gap tests fail without the condition.
    #[doc(hidden)]
    pub fn unsafe_disable_gap_safety(mut self) -> Self {
        self.gap_safe = false;
        self
    }

    /// Checks the schema name (the only setting that could make SQL invalid).
    pub fn validate(&self) -> Result<(), SetupError> {
        let s = self.schema.as_bytes();
        let ok = !s.is_empty()
            && s.len() <= 48
            && (s[0].is_ascii_lowercase() || s[0] == b'_')
            && s.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if ok {
            Ok(())
        } else {
            Err(SetupError::InvalidSchemaName(self.schema.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_strict() {
        for good in ["tidemark", "_x", "app_1"] {
            assert!(PgStoreConfig::default().schema(good).validate().is_ok(), "{good}");
        }
        for bad in ["", "Tidemark", "1abc", "a-b", "a;drop table x", "a\"b", &"x".repeat(49)] {
            assert!(
                matches!(PgStoreConfig::default().schema(bad).validate(), Err(SetupError::InvalidSchemaName(_))),
                "{bad}"
            );
        }
    }
}

//! Configuration of the relay.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::downcast::{self, Downcaster};
use crate::subject::SubjectScheme;

/// Why a [`RelayConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The relay name breaks the rules on [`RelayConfig::name`].
    #[error("invalid relay name {name:?}: 1 to 64 ASCII letters, digits, '_', '-' or '.'")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A setting is out of range.
    #[error("invalid relay setting {setting}: {reason}")]
    Invalid {
        /// The setting's field name.
        setting: &'static str,
        /// What the setting must be.
        reason: &'static str,
    },
    /// A downcaster's versions or event type break a rule, or its type is thin.
    #[error("invalid downcaster of {event_type:?} from v{from} to v{to}: {reason}")]
    InvalidDowncast {
        /// The event type it rewrites.
        event_type: String,
        /// The schema version it rewrites from.
        from: u32,
        /// The schema version it rewrites to.
        to: u32,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two downcasters rewrite the same event type between the same versions.
    #[error("the downcaster of {event_type:?} from v{from} to v{to} is registered twice")]
    DuplicateDowncast {
        /// The event type.
        event_type: String,
        /// The schema version it rewrites from.
        from: u32,
        /// The schema version it rewrites to.
        to: u32,
    },
}

/// Options of a [`NatsRelay`](crate::NatsRelay). Every field has a documented default;
/// set them with the consuming builder methods.
///
/// ```
/// use std::time::Duration;
/// use tidemark_nats::{RelayConfig, SubjectScheme};
/// let config = RelayConfig::new("orders")
///     .subjects(SubjectScheme::new("shop.events", 8)?)
///     .batch_size(1000)
///     .thin("DocumentUploaded");
/// assert_eq!(config.checkpoint_name(), "relay:orders");
/// # Ok::<(), tidemark_nats::SubjectError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The relay's name (default `main`): 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
    /// Relays with the same name (and store schema) elect one leader between them; the
    /// name also names the checkpoint, `relay:<name>`.
    pub name: String,
    /// How events map to subjects (default: prefix `tidemark`, 16 partitions).
    pub subjects: SubjectScheme,
    /// Most events read from the log and published per batch (default 2000).
    pub batch_size: usize,
    /// Most publishes awaiting their PubAck at once (default 1024).
    pub max_in_flight: usize,
    /// How long a publish may wait for its PubAck, and a JetStream API request for its
    /// reply (default 5 s).
    pub publish_timeout: Duration,
    /// Longest wait for new events while the log is drained before the relay checks its
    /// leadership again (default 1 s). New events wake it at once.
    pub idle_wait: Duration,
    /// Shortest time between two saves of the checkpoint (default 200 ms). Events are
    /// published as soon as they are read; the checkpoint past them is saved once this
    /// much time has passed since the last save (also when the relay is idle), together
    /// with a check of the leadership. A relay that dies republishes at most what it
    /// published since: JetStream drops those copies as duplicates. Zero saves after
    /// every batch.
    pub checkpoint_interval: Duration,
    /// How often a standby relay tries to take the leadership (default 1 s).
    pub standby_poll: Duration,
    /// First delay before a retry after a failure (default 100 ms); each further
    /// failure doubles it, plus a random jitter of up to the same amount.
    pub backoff_min: Duration,
    /// Largest delay before a retry, before jitter (default 10 s).
    pub backoff_max: Duration,
    /// How long after a publish the relay may publish the same event again: the time to
    /// save the checkpoint past it plus the time a standby needs to take over (default
    /// 60 s). The stream's duplicate window should be at least this long.
    pub retry_horizon: Duration,
    /// Event types published as thin notifications: headers only, empty payload
    /// (default none). Consumers fetch the event by id from the store.
    pub thin_event_types: BTreeSet<String>,
    /// Downcasters for dual publishing (default none): while one is active, each event of
    /// its type and stored schema version is also published downcast to an older version.
    /// One per event type, `from` and `to`; not for thin types.
    pub downcasters: Vec<Downcaster>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "main".to_owned(),
            subjects: SubjectScheme::default(),
            batch_size: 2000,
            max_in_flight: 1024,
            publish_timeout: Duration::from_secs(5),
            idle_wait: Duration::from_secs(1),
            checkpoint_interval: Duration::from_millis(200),
            standby_poll: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            retry_horizon: Duration::from_secs(60),
            thin_event_types: BTreeSet::new(),
            downcasters: Vec::new(),
        }
    }
}

impl RelayConfig {
    /// The defaults, with the given relay name.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Sets the subject scheme.
    pub fn subjects(mut self, scheme: SubjectScheme) -> Self {
        self.subjects = scheme;
        self
    }

    /// Sets the batch size, in events.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events;
        self
    }

    /// Sets the most publishes awaiting their PubAck.
    pub fn max_in_flight(mut self, publishes: usize) -> Self {
        self.max_in_flight = publishes;
        self
    }

    /// Sets the PubAck and JetStream API timeout.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Sets the longest idle wait between leadership checks.
    pub fn idle_wait(mut self, wait: Duration) -> Self {
        self.idle_wait = wait;
        self
    }

    /// Sets the shortest time between two checkpoint saves.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// Sets how often a standby tries to take the leadership.
    pub fn standby_poll(mut self, interval: Duration) -> Self {
        self.standby_poll = interval;
        self
    }

    /// Sets the first and the largest retry delay.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Sets the retry horizon.
    pub fn retry_horizon(mut self, horizon: Duration) -> Self {
        self.retry_horizon = horizon;
        self
    }

    /// Publishes events of this type as thin notifications.
    pub fn thin(mut self, event_type: impl Into<String>) -> Self {
        self.thin_event_types.insert(event_type.into());
        self
    }

    /// Registers a downcaster: events of its type and `from` version are also published
    /// downcast to its `to` version, until its deprecation date.
    pub fn downcast(mut self, downcaster: Downcaster) -> Self {
        self.downcasters.push(downcaster);
        self
    }

    /// The name of the relay's checkpoint in the store: `relay:<name>`.
    pub fn checkpoint_name(&self) -> String {
        format!("relay:{}", self.name)
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if self.name.is_empty() || self.name.len() > 64 || !self.name.as_bytes().iter().all(name_ok) {
            return Err(ConfigError::InvalidName { name: self.name.clone() });
        }
        let invalid = |setting, reason| Err(ConfigError::Invalid { setting, reason });
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return invalid("batch_size", "1 to 100000 events");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 65_536 {
            return invalid("max_in_flight", "1 to 65536 publishes");
        }
        let durations = [
            ("publish_timeout", self.publish_timeout),
            ("idle_wait", self.idle_wait),
            ("standby_poll", self.standby_poll),
            ("backoff_min", self.backoff_min),
        ];
        if let Some((setting, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return invalid(setting, "longer than zero");
        }
        if self.checkpoint_interval > self.retry_horizon / 2 {
            return invalid("checkpoint_interval", "at most half the retry horizon");
        }
        if self.backoff_max < self.backoff_min {
            return invalid("backoff_max", "at least backoff_min");
        }
        downcast::validate(&self.downcasters, &self.thin_event_types)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(RelayConfig::default().validate(), Ok(()));
        assert_eq!(RelayConfig::default().checkpoint_name(), "relay:main");
    }

    #[test]
    fn bad_settings_are_named() {
        for name in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(matches!(RelayConfig::new(name).validate(), Err(ConfigError::InvalidName { .. })), "{name:?}");
        }
        let setting = |c: RelayConfig| match c.validate() {
            Err(ConfigError::Invalid { setting, .. }) => setting,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        assert_eq!(setting(RelayConfig::default().batch_size(0)), "batch_size");
        assert_eq!(setting(RelayConfig::default().max_in_flight(0)), "max_in_flight");
        assert_eq!(setting(RelayConfig::default().idle_wait(Duration::ZERO)), "idle_wait");
        let rare = RelayConfig::default().checkpoint_interval(Duration::from_secs(31));
        assert_eq!(setting(rare), "checkpoint_interval");
        let backwards = RelayConfig::default().backoff(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(setting(backwards), "backoff_max");
    }

    #[test]
    fn downcasters_are_validated_with_the_rest() {
        let until = chrono::Utc::now();
        let step = |from, to| Downcaster::new("Paid", from, to, until, Ok);
        assert_eq!(RelayConfig::default().downcast(step(2, 1)).downcast(step(3, 1)).validate(), Ok(()));
        let err = RelayConfig::default().downcast(step(1, 2)).validate();
        assert!(matches!(err, Err(ConfigError::InvalidDowncast { from: 1, to: 2, .. })), "{err:?}");
        let err = RelayConfig::default().downcast(step(2, 1)).downcast(step(2, 1)).validate();
        assert!(matches!(err, Err(ConfigError::DuplicateDowncast { from: 2, to: 1, .. })), "{err:?}");
        let err = RelayConfig::default().thin("Paid").downcast(step(2, 1)).validate();
        assert!(matches!(err, Err(ConfigError::InvalidDowncast { .. })), "thin types have no payload: {err:?}");
    }
}

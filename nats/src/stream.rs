//! Creating or updating the JetStream stream the relay publishes to.

use std::time::Duration;

use async_nats::jetstream::context::CreateStreamError;
use async_nats::jetstream::stream::{Config, DiscardPolicy, Info, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;

use crate::subject::SubjectScheme;

/// Why the stream could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The settings break a rule.
    #[error("invalid stream setting {setting}: {reason}")]
    Invalid {
        /// The setting's field name.
        setting: &'static str,
        /// What the setting must be.
        reason: &'static str,
    },
    /// JetStream refused or did not answer the request.
    #[error("creating or updating the JetStream stream failed: {0}")]
    JetStream(#[source] CreateStreamError),
}

/// The JetStream stream's settings. Its subjects are `<prefix>.>` of the
/// [`SubjectScheme`]; storage is on file, retention by limits, old messages discarded.
///
/// ```
/// use std::time::Duration;
/// let settings = tidemark_nats::StreamSettings::new("EVENTS").max_age(Duration::from_secs(86_400));
/// assert!(settings.covers_retry_horizon(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSettings {
    /// The stream's name (default `TIDEMARK`): no `.`, `*`, `>`, whitespace or `/`.
    pub name: String,
    /// Copies kept in a cluster (default 1; 1 to 5).
    pub replicas: usize,
    /// Oldest message kept (default 7 days; `Duration::ZERO` keeps messages forever).
    /// JetStream is a delivery channel: the PostgreSQL log stays the source of truth.
    pub max_age: Duration,
    /// Largest total size, in bytes (default `None`: unlimited).
    pub max_bytes: Option<u64>,
    /// How long JetStream remembers message ids to drop republished events (default
    /// 2 min). Should be at least the relay's retry horizon.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "TIDEMARK".to_owned(),
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: None,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

impl StreamSettings {
    /// The defaults, with the given stream name.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Sets the number of replicas.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets the oldest message kept (`Duration::ZERO`: forever).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Sets the largest total size, in bytes.
    pub fn max_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets the duplicate window.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Whether a republish within `retry_horizon` of the first publish is still dropped
    /// as a duplicate.
    pub fn covers_retry_horizon(&self, retry_horizon: Duration) -> bool {
        self.duplicate_window >= retry_horizon
    }

    /// The JetStream configuration these settings stand for.
    pub fn to_config(&self, scheme: &SubjectScheme) -> Result<Config, StreamError> {
        self.validate()?;
        Ok(Config {
            name: self.name.clone(),
            subjects: vec![scheme.all_filter()],
            num_replicas: self.replicas,
            max_age: self.max_age,
            max_bytes: self.max_bytes.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            duplicate_window: self.duplicate_window,
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            ..Config::default()
        })
    }

    fn validate(&self) -> Result<(), StreamError> {
        let invalid = |setting, reason| Err(StreamError::Invalid { setting, reason });
        let bad = |c: char| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control();
        if self.name.is_empty() || self.name.len() > 255 || self.name.contains(bad) {
            return invalid("name", "1 to 255 characters without '.', '*', '>', '/', '\\' or whitespace");
        }
        if !(1..=5).contains(&self.replicas) {
            return invalid("replicas", "1 to 5");
        }
        if self.duplicate_window.is_zero() {
            return invalid("duplicate_window", "longer than zero");
        }
        if !self.max_age.is_zero() && self.duplicate_window > self.max_age {
            return invalid("duplicate_window", "at most max_age");
        }
        Ok(())
    }
}

/// Creates the stream, or updates it to the settings, and returns its info. Logs a
/// warning when the duplicate window is shorter than `retry_horizon` (see
/// [`RelayConfig::retry_horizon`](crate::RelayConfig::retry_horizon)): a republish after
/// the window would store an event twice.
pub async fn ensure_stream(
    jetstream: &Context,
    scheme: &SubjectScheme,
    settings: &StreamSettings,
    retry_horizon: Duration,
) -> Result<Info, StreamError> {
    let config = settings.to_config(scheme)?;
    if !settings.covers_retry_horizon(retry_horizon) {
        tracing::warn!(
            stream = %settings.name,
            duplicate_window = ?settings.duplicate_window,
            ?retry_horizon,
            "the stream's duplicate window is shorter than the relay's retry horizon: \
             an event republished after a crash or takeover may be stored twice"
        );
    }
    let info = jetstream.create_or_update_stream(config).await.map_err(StreamError::JetStream)?;
    tracing::info!(stream = %info.config.name, subjects = ?info.config.subjects, "JetStream stream ready");
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_a_stream_config() {
        let scheme = SubjectScheme::new("app.events", 4).expect("valid");
        let config = StreamSettings::new("APP").max_bytes(Some(1 << 30)).to_config(&scheme).expect("valid");
        assert_eq!(config.subjects, vec!["app.events.>".to_owned()]);
        assert_eq!((config.num_replicas, config.max_bytes), (1, 1 << 30));
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        assert_eq!(StreamSettings::new("APP").to_config(&scheme).expect("valid").max_bytes, -1);
    }

    #[test]
    fn bad_settings_are_named() {
        let scheme = SubjectScheme::default();
        let setting = |s: StreamSettings| match s.to_config(&scheme) {
            Err(StreamError::Invalid { setting, .. }) => setting,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        for name in ["", "a.b", "a*", "a>", "a b", "a/b"] {
            assert_eq!(setting(StreamSettings::new(name)), "name", "{name:?}");
        }
        assert_eq!(setting(StreamSettings::new("S").replicas(0)), "replicas");
        assert_eq!(setting(StreamSettings::new("S").duplicate_window(Duration::ZERO)), "duplicate_window");
        let short_age = StreamSettings::new("S").max_age(Duration::from_secs(60));
        assert_eq!(setting(short_age), "duplicate_window");
        assert!(StreamSettings::new("S").max_age(Duration::ZERO).to_config(&scheme).is_ok());
    }

    #[test]
    fn the_retry_horizon_check() {
        let settings = StreamSettings::new("S").duplicate_window(Duration::from_secs(30));
        assert!(!settings.covers_retry_horizon(Duration::from_secs(60)));
        assert!(settings.covers_retry_horizon(Duration::from_secs(30)));
    }
}

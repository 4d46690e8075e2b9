//! Dual publishing: a registered downcaster rewrites events of one type and schema version
//! to an older version, which the relay publishes as a second message until a
//! deprecation date, so old consumers keep working while new ones move on.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tidemark::RecordedEvent;

use crate::config::ConfigError;
use crate::subject::token_problem;

/// The function of a downcaster: a payload of the newer version in, the older version out.
type Transform = dyn Fn(Value) -> Result<Value, String> + Send + Sync;

/// Rewrites payloads of one event type from a newer schema version (`from`) to an older
/// one (`to`). While the wall clock is before `until`, the relay publishes every event
/// stored at `from` twice: as stored, and downcast under the subject and schema version
/// `to` (see *Dual publishing* in the crate documentation). Register it with
/// [`RelayConfig::downcast`](crate::RelayConfig::downcast).
///
/// ```
/// use serde_json::json;
/// use tidemark_nats::{Downcaster, RelayConfig};
/// // v2 renamed `total` to `total_cents`; v1 consumers are served until the end of March.
/// let until = "2026-04-01T00:00:00Z".parse()?;
/// let v2_to_v1 = Downcaster::new("OrderPlaced", 2, 1, until, |mut payload| {
///     let object = payload.as_object_mut().ok_or("not an object")?;
///     let total = object.remove("total_cents").ok_or("no total_cents")?;
///     object.insert("total".to_owned(), total);
///     Ok(payload)
/// });
/// assert_eq!(v2_to_v1.apply(json!({ "total_cents": 250 })), Ok(json!({ "total": 250 })));
/// let config = RelayConfig::new("main").downcast(v2_to_v1);
/// assert!(config.validate().is_ok());
/// # Ok::<(), chrono::ParseError>(())
/// ```
#[derive(Clone)]
pub struct Downcaster {
    event_type: String,
    from: u32,
    to: u32,
    until: DateTime<Utc>,
    transform: Arc<Transform>,
}

impl fmt::Debug for Downcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downcaster")
            .field("event_type", &self.event_type)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

impl Downcaster {
    /// A downcaster of `event_type` from schema version `from` to the older `to`, active
    /// while the wall clock is before `until`. `transform` gets the stored payload and
    /// returns the older version's, or a reason why it cannot (the relay then publishes
    /// the event without its copy and logs the reason). Checked by
    /// [`RelayConfig::validate`](crate::RelayConfig::validate).
    pub fn new<F>(event_type: impl Into<String>, from: u32, to: u32, until: DateTime<Utc>, transform: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        Self { event_type: event_type.into(), from, to, until, transform: Arc::new(transform) }
    }

    /// The event type it rewrites.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The stored schema version it rewrites from.
    pub fn from_version(&self) -> u32 {
        self.from
    }

    /// The older schema version it rewrites to.
    pub fn to_version(&self) -> u32 {
        self.to
    }

    /// The deprecation date: from then on only the stored version is published.
    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }

    /// Whether copies are published at `now` (strictly before `until`).
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }

    /// Runs the transform on a payload.
    pub fn apply(&self, payload: Value) -> Result<Value, String> {
        (self.transform)(payload)
    }

    /// The downcast payload of `event`, serialized.
    fn copy_payload(&self, event: &RecordedEvent) -> Result<Bytes, Failure> {
        let payload: Value = serde_json::from_str(event.payload.get()).map_err(Failure::Payload)?;
        let downcast = catch_unwind(AssertUnwindSafe(|| self.apply(payload))).map_err(|_| Failure::Panicked)?;
        let downcast = downcast.map_err(Failure::Refused)?;
        serde_json::to_vec(&downcast).map(Bytes::from).map_err(Failure::Payload)
    }

    fn problem(&self) -> Option<&'static str> {
        if self.to == 0 {
            return Some("schema versions start at 1");
        }
        if self.to >= self.from {
            return Some("a downcaster goes to an older schema version than it comes from");
        }
        if self.event_type.len() > 128 {
            return Some("an event type name is at most 128 bytes");
        }
        token_problem(&self.event_type)
    }
}

/// Checks every downcaster: versions, type name, thin types, duplicates.
pub(crate) fn validate(downcasters: &[Downcaster], thin: &BTreeSet<String>) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for d in downcasters {
        let (event_type, from, to) = (d.event_type.clone(), d.from, d.to);
        let reason = d
            .problem()
            .or_else(|| thin.contains(&d.event_type).then_some("a thin event type has no payload to downcast"));
        if let Some(reason) = reason {
            return Err(ConfigError::InvalidDowncast { event_type, from, to, reason });
        }
        if !seen.insert((d.event_type.as_str(), from, to)) {
            return Err(ConfigError::DuplicateDowncast { event_type, from, to });
        }
    }
    Ok(())
}

/// Why one downcast copy was not published (the event itself was).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// The payload could not be read or written as JSON.
    #[error("payload JSON: {0}")]
    Payload(#[source] serde_json::Error),
    /// The transform returned an error.
    #[error("the transform refused the payload: {0}")]
    Refused(String),
    /// The transform panicked.
    #[error("the transform panicked")]
    Panicked,
}

/// A relay's downcasters by event type, each remembering whether its expiry was logged.
#[derive(Debug, Default)]
pub(crate) struct Downcasts {
    by_type: HashMap<String, Vec<Registered>>,
}

#[derive(Debug)]
struct Registered {
    downcaster: Downcaster,
    expiry_logged: AtomicBool,
}

impl Downcasts {
    pub(crate) fn new(downcasters: &[Downcaster]) -> Self {
        let mut by_type: HashMap<String, Vec<Registered>> = HashMap::new();
        for d in downcasters {
            let registered = Registered { downcaster: d.clone(), expiry_logged: AtomicBool::new(false) };
            by_type.entry(d.event_type.clone()).or_default().push(registered);
        }
        Self { by_type }
    }

    /// Logs at info, once per downcaster, that it has expired at `now`.
    pub(crate) fn log_expired(&self, now: DateTime<Utc>, relay: &str) {
        for r in self.by_type.values().flatten() {
            let d = &r.downcaster;
            if !d.is_active_at(now) && !r.expiry_logged.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    relay,
                    event_type = %d.event_type,
                    from = d.from,
                    to = d.to,
                    until = %d.until.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "downcaster expired: only the stored schema version is published from now on"
                );
            }
        }
    }

    /// The downcasters of `event`'s type and stored schema version active at `now`, in
    /// registration order.
    pub(crate) fn active<'a>(
        &'a self,
        event: &'a RecordedEvent,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = DowncastCopy<'a>> + 'a {
        let registered = self.by_type.get(&event.event_type).map(Vec::as_slice).unwrap_or_default();
        registered
            .iter()
            .map(|r| &r.downcaster)
            .filter(move |d| d.from == event.schema_version && d.is_active_at(now))
            .map(move |downcaster| DowncastCopy { downcaster, event })
    }
}

/// A downcast copy to publish.
#[derive(Debug)]
pub(crate) struct DowncastCopy<'a> {
    pub downcaster: &'a Downcaster,
    pub event: &'a RecordedEvent,
}

impl DowncastCopy<'_> {
    /// The copy's payload, or why there is none.
    pub(crate) fn payload(&self) -> Result<Bytes, Failure> {
        self.downcaster.copy_payload(self.event)
    }

    /// Logs that the copy was not published, and why.
    pub(crate) fn log_skipped(&self, relay: &str, reason: &dyn std::error::Error) {
        let (d, event) = (self.downcaster, self.event);
        tracing::error!(
            relay,
            event_id = %event.event_id,
            position = %event.position,
            event_type = %event.event_type,
            from = d.from,
            to = d.to,
            error = %reason,
            "downcast copy not published: the event is published without it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downcaster(event_type: &str, from: u32, to: u32) -> Downcaster {
        Downcaster::new(event_type, from, to, Utc::now(), Ok)
    }

    fn check(downcasters: &[Downcaster]) -> Result<(), ConfigError> {
        validate(downcasters, &BTreeSet::from(["Thin".to_owned()]))
    }

    #[test]
    fn valid_downcasters_pass() {
        let list = [downcaster("OrderPlaced", 3, 2), downcaster("OrderPlaced", 3, 1), downcaster("OrderPlaced", 2, 1)];
        assert_eq!(check(&list), Ok(()));
        assert_eq!(check(&[]), Ok(()));
    }

    #[test]
    fn bad_versions_types_and_thin_types_are_named() {
        let cases = [("A", 2, 2), ("A", 1, 2), ("A", 1, 0), ("A", 0, 0), ("a.b", 2, 1), ("", 2, 1), ("Thin", 2, 1)];
        let long = "x".repeat(129);
        for (event_type, from, to) in cases.into_iter().chain([(long.as_str(), 2, 1)]) {
            let err = check(&[downcaster(event_type, from, to)]).expect_err(event_type);
            assert!(
                matches!(&err, ConfigError::InvalidDowncast { event_type: t, from: f, to: v, .. }
                    if t == event_type && (*f, *v) == (from, to)),
                "{event_type} v{from} -> v{to}: {err:?}"
            );
        }
    }

    #[test]
    fn a_second_registration_of_the_same_step_is_refused() {
        let list = [downcaster("A", 2, 1), downcaster("B", 2, 1), downcaster("A", 2, 1)];
        let expected = ConfigError::DuplicateDowncast { event_type: "A".to_owned(), from: 2, to: 1 };
        assert_eq!(check(&list), Err(expected));
    }

    #[test]
    fn copies_come_from_active_downcasters_of_the_stored_version() {
        let now = Utc::now();
        let later = now + chrono::TimeDelta::hours(1);
        let list = [
            Downcaster::new("A", 2, 1, later, |_| Ok(Value::from(1))),
            Downcaster::new("A", 3, 1, later, |_| Ok(Value::from(2))),
            Downcaster::new("A", 2, 1, now, |_| Ok(Value::from(3))),
            Downcaster::new("B", 2, 1, later, |_| Ok(Value::from(4))),
        ];
        let downcasts = Downcasts::new(&list);
        let event = event("A", 2, "{}");
        let payloads: Vec<_> = downcasts.active(&event, now).map(|c| c.payload().expect("payload")).collect();
        assert_eq!(payloads, [Bytes::from_static(b"1")]);
        assert_eq!(downcasts.active(&event, later).count(), 0, "expired at `until`");
        assert_eq!(downcasts.active(&self::event("C", 2, "{}"), now).count(), 0);
    }

    #[test]
    fn each_expiry_is_noted_once() {
        let now = Utc::now();
        let list =
            [Downcaster::new("A", 2, 1, now, Ok), Downcaster::new("A", 3, 1, now + chrono::TimeDelta::hours(1), Ok)];
        let downcasts = Downcasts::new(&list);
        let noted =
            || downcasts.by_type["A"].iter().map(|r| r.expiry_logged.load(Ordering::Relaxed)).collect::<Vec<_>>();
        assert_eq!(noted(), [false, false]);
        downcasts.log_expired(now, "main");
        assert_eq!(noted(), [true, false], "only the expired one");
        downcasts.log_expired(now + chrono::TimeDelta::hours(2), "main");
        assert_eq!(noted(), [true, true]);
    }

    #[test]
    fn failures_are_typed() {
        let later = Utc::now() + chrono::TimeDelta::hours(1);
        let refuse = Downcaster::new("A", 2, 1, later, |_| Err("no".to_owned()));
        let panic = Downcaster::new("A", 2, 1, later, |_| panic!("the transform panics"));
        let event = event("A", 2, r#"{"x":1}"#);
        let copy = |downcaster| DowncastCopy { downcaster, event: &event }.payload();
        assert!(matches!(copy(&refuse), Err(Failure::Refused(reason)) if reason == "no"));
        assert!(matches!(copy(&panic), Err(Failure::Panicked)));
    }

    fn event(event_type: &str, schema_version: u32, payload: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: tidemark::EventId::new(),
            stream_id: tidemark::StreamId::new("order-1").expect("stream id"),
            stream_version: tidemark::StreamVersion(1),
            position: tidemark::LogPosition::new(1, 1),
            event_type: event_type.to_owned(),
            schema_version,
            payload: serde_json::value::RawValue::from_string(payload.to_owned()).expect("json"),
            metadata: tidemark::Metadata::new(),
            recorded_at: Utc::now(),
        }
    }
}

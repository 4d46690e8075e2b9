//! Decoding stored events into domain events, through upcaster chains.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::event::{DecodeError, DomainEvent, Envelope, RecordedEvent};
use crate::version::LogPosition;

type Transform = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// Mistakes in a set of upcasters, found when the codec is built (at start-up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two variants of the event enum declare the same type name.
    #[error("event type {0:?} is declared twice")]
    DuplicateEventType(String),
    /// Two upcasters start from the same type and version.
    #[error("two upcasters start from {event_type:?} version {version}")]
    DuplicateUpcaster {
        /// The type both start from.
        event_type: String,
        /// The version both start from.
        version: u32,
    },
    /// An upcaster starts from a type and version that is already current.
    #[error("an upcaster starts from {event_type:?} version {version}, which is the current version")]
    UpcastFromCurrent {
        /// The current type.
        event_type: String,
        /// Its current version.
        version: u32,
    },
    /// A chain has no step out of this type and version before reaching a current one.
    #[error("missing upcaster step from {event_type:?} version {version}")]
    MissingStep {
        /// The type with the missing step.
        event_type: String,
        /// The version with no step out of it.
        version: u32,
    },
    /// A chain ends at a type that is neither current nor upcast further.
    #[error("an upcaster chain ends at {event_type:?} version {version}, which is neither current nor upcast further")]
    DeadEnd {
        /// Where the chain ends.
        event_type: String,
        /// The version it ends at.
        version: u32,
    },
    /// A chain comes back to where it started.
    #[error("the upcaster chain from {event_type:?} version {version} loops")]
    Cycle {
        /// A type on the loop.
        event_type: String,
        /// Its version.
        version: u32,
    },
}

#[derive(Clone)]
struct Step {
    to_type: String,
    to_version: u32,
    transform: Transform,
}

/// A resolved chain: the transforms to apply, in order, and the current type reached.
#[derive(Clone)]
struct Chain {
    steps: Vec<(String, u32, Transform)>,
    target: &'static str,
}

/// Builds an [`EventCodec`]: registers upcasters, then validates them all at once.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// # pub struct Placed { pub total: i64, pub currency: String }
/// # tidemark::domain_events! {
/// #     #[derive(Debug, Clone, PartialEq)]
/// #     pub enum OrderEvent { Placed(Placed) = ("OrderPlaced", 2) }
/// # }
/// use tidemark::EventCodec;
/// let codec = EventCodec::<OrderEvent>::builder()
///     // the type was once called "OrderCreated"
///     .rename("OrderCreated", 1, "OrderPlaced", 1)
///     // v1 had no currency
///     .upcast("OrderPlaced", 1, |mut v| {
///         v["currency"] = "EUR".into();
///         Ok(v)
///     })
///     .build()?;
/// # Ok::<(), tidemark::RegistryError>(())
/// ```
pub struct Upcasters<E> {
    steps: Vec<((String, u32), Step)>,
    introduced: HashMap<String, u32>,
    _events: PhantomData<fn() -> E>,
}

impl<E: DomainEvent> Upcasters<E> {
    /// Upcasts `event_type` from `from_version` to `from_version + 1`.
    pub fn upcast<F>(self, event_type: &str, from_version: u32, transform: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.upcast_to(event_type, from_version, event_type, from_version + 1, transform)
    }

    /// Renames a type, keeping the payload as it is.
    pub fn rename(self, old_type: &str, old_version: u32, new_type: &str, new_version: u32) -> Self {
        self.upcast_to(old_type, old_version, new_type, new_version, Ok)
    }

    /// The general step: from one type and version to another, transforming the payload.
    pub fn upcast_to<F>(
        mut self,
        from_type: &str,
        from_version: u32,
        to_type: &str,
        to_version: u32,
        transform: F,
    ) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        let step = Step { to_type: to_type.to_owned(), to_version, transform: Arc::new(transform) };
        self.steps.push(((from_type.to_owned(), from_version), step));
        self
    }

    /// Declares that a current type was introduced at `version`, so no steps are needed below it.
    pub fn introduced_at(mut self, event_type: &str, version: u32) -> Self {
        self.introduced.insert(event_type.to_owned(), version);
        self
    }

    /// Validates every chain and builds the codec.
    pub fn build(self) -> Result<EventCodec<E>, RegistryError> {
        let mut current: HashMap<&'static str, u32> = HashMap::new();
        for t in E::TYPES {
            if current.insert(t.name, t.version).is_some() {
                return Err(RegistryError::DuplicateEventType(t.name.to_owned()));
            }
        }
        let mut steps: HashMap<(String, u32), Step> = HashMap::new();
        for (from, step) in self.steps {
            if current.get(from.0.as_str()) == Some(&from.1) {
                return Err(RegistryError::UpcastFromCurrent { event_type: from.0, version: from.1 });
            }
            if steps.contains_key(&from) {
                return Err(RegistryError::DuplicateUpcaster { event_type: from.0, version: from.1 });
            }
            steps.insert(from, step);
        }
        for (name, version) in &current {
            let first = self.introduced.get(*name).copied().unwrap_or(1);
            if let Some(v) = (first..*version).find(|v| !steps.contains_key(&(name.to_string(), *v))) {
                return Err(RegistryError::MissingStep { event_type: name.to_string(), version: v });
            }
        }
        let mut chains = HashMap::new();
        for from in steps.keys() {
            chains.insert(from.clone(), resolve(from, &steps, &current)?);
        }
        Ok(EventCodec { current, chains, _events: PhantomData })
    }
}

fn resolve(
    from: &(String, u32),
    steps: &HashMap<(String, u32), Step>,
    current: &HashMap<&'static str, u32>,
) -> Result<Chain, RegistryError> {
    let mut at = from.clone();
    let mut chain = Vec::new();
    loop {
        if let Some((name, _)) = current.get_key_value(at.0.as_str()).filter(|(_, v)| **v == at.1) {
            return Ok(Chain { steps: chain, target: name });
        }
        let Some(step) = steps.get(&at) else {
            return Err(match current.get(at.0.as_str()) {
                Some(v) if *v > at.1 => RegistryError::MissingStep { event_type: at.0, version: at.1 },
                _ => RegistryError::DeadEnd { event_type: at.0, version: at.1 },
            });
        };
        if chain.len() > steps.len() {
            return Err(RegistryError::Cycle { event_type: from.0.clone(), version: from.1 });
        }
        chain.push((at.0.clone(), at.1, step.transform.clone()));
        at = (step.to_type.clone(), step.to_version);
    }
}

/// Turns stored events into domain events of the current schema, applying upcasters
/// on the way. Stored events are never rewritten: upcasting happens on every read.
pub struct EventCodec<E> {
    current: HashMap<&'static str, u32>,
    chains: HashMap<(String, u32), Chain>,
    _events: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for Upcasters<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<_> = self.steps.iter().map(|(from, s)| (from, (&s.to_type, s.to_version))).collect();
        f.debug_struct("Upcasters").field("steps", &steps).field("introduced", &self.introduced).finish()
    }
}

impl<E> fmt::Debug for EventCodec<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCodec").field("current", &self.current).field("upcasters", &self.chains.len()).finish()
    }
}

/// A stored payload brought to the current schema, not yet decoded into a type.
#[derive(Debug, Clone, PartialEq)]
pub struct Upcast {
    /// The current type name.
    pub event_type: &'static str,
    /// The current schema version.
    pub schema_version: u32,
    /// The payload in the current schema.
    pub payload: Value,
}

impl<E: DomainEvent> EventCodec<E> {
    /// Starts registering upcasters.
    pub fn builder() -> Upcasters<E> {
        Upcasters { steps: Vec::new(), introduced: HashMap::new(), _events: PhantomData }
    }

    /// A codec for events that have never changed shape.
    pub fn without_upcasters() -> Result<Self, RegistryError> {
        Self::builder().build()
    }

    /// Whether a stored type and version can be read (current, or upcast to current).
    pub fn covers(&self, event_type: &str, schema_version: u32) -> bool {
        self.current.get(event_type) == Some(&schema_version)
            || self.chains.contains_key(&(event_type.to_owned(), schema_version))
    }

    /// Whether events stored under this type name (in any schema version) belong to this
    /// codec: the name is a current type or the start of an upcaster chain. Consumers use it
    /// to skip events that are not theirs, while a known name in an unknown version stays an
    /// error.
    pub fn handles(&self, event_type: &str) -> bool {
        self.current.contains_key(event_type) || self.chains.keys().any(|(name, _)| name == event_type)
    }

    /// Decodes a stored event into its current domain type.
    pub fn decode(&self, event: &RecordedEvent) -> Result<Envelope<E>> {
        let decoded = self.decode_event(event)?;
        Ok(Envelope {
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            position: event.position,
            metadata: event.metadata.clone(),
            recorded_at: event.recorded_at,
            event: decoded,
        })
    }

    /// Decodes only the event, without the envelope.
    pub fn decode_event(&self, event: &RecordedEvent) -> Result<E> {
        let (name, version) = (event.event_type.as_str(), event.schema_version);
        if self.current.get(name) == Some(&version) {
            let result = E::decode_str(name, event.payload.get());
            return result.map_err(|e| decode_error(event, name, version, e));
        }
        let up = self.upcast(event)?;
        E::decode_value(up.event_type, up.payload).map_err(|e| decode_error(event, up.event_type, up.schema_version, e))
    }

    /// Brings a stored event's payload to the current schema without decoding it.
    pub fn upcast(&self, event: &RecordedEvent) -> Result<Upcast> {
        let (name, version) = (event.event_type.as_str(), event.schema_version);
        let payload: Value = serde_json::from_str(event.payload.get())
            .map_err(|e| decode_error(event, name, version, DecodeError::Payload(e)))?;
        if let Some((current, v)) = self.current.get_key_value(name).filter(|(_, v)| **v == version) {
            return Ok(Upcast { event_type: current, schema_version: *v, payload });
        }
        let chain = self.chains.get(&(name.to_owned(), version)).ok_or_else(|| Error::UnknownEventType {
            event_type: name.to_owned(),
            schema_version: version,
            position: event.position,
        })?;
        let payload = run_chain(chain, payload, event.position)?;
        let schema_version = self.current.get(chain.target).copied().unwrap_or_default();
        Ok(Upcast { event_type: chain.target, schema_version, payload })
    }
}

fn run_chain(chain: &Chain, mut payload: Value, position: LogPosition) -> Result<Value> {
    for (from_type, from_version, transform) in &chain.steps {
        payload = transform(payload).map_err(|reason| Error::Upcast {
            event_type: from_type.clone(),
            schema_version: *from_version,
            position,
            reason,
        })?;
    }
    Ok(payload)
}

fn decode_error(event: &RecordedEvent, name: &str, version: u32, error: DecodeError) -> Error {
    match error {
        DecodeError::Payload(source) => Error::Undecodable {
            stream: event.stream_id.clone(),
            stream_version: event.stream_version,
            position: event.position,
            event_type: name.to_owned(),
            schema_version: version,
            source,
        },
        _ => Error::UnknownEventType { event_type: name.to_owned(), schema_version: version, position: event.position },
    }
}

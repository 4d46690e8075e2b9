//! Domain events, events to append, and events as stored.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::ids::EventId;
use crate::metadata::Metadata;
use crate::stream_id::StreamId;
use crate::version::{LogPosition, StreamVersion};

/// A current event type: its stable name and its schema version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    /// The stable type name, stored with every event.
    pub name: &'static str,
    /// The current schema version of the payload.
    pub version: u32,
}

/// Why a payload could not be turned into a domain event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The type name is not one of the enum's types.
    #[error("unknown event type")]
    UnknownType,
    /// The payload does not match the type's shape.
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
}

/// The events of one aggregate, usually an enum with one variant per event type.
///
/// Implement it with [`domain_events!`](crate::domain_events), which generates the
/// type-name matching so that user code never matches strings by hand.
pub trait DomainEvent: Sized + Send + Sync + 'static {
    /// Every event type of this enum with its current schema version.
    const TYPES: &'static [EventType];

    /// The stable type name of this event.
    fn event_type(&self) -> &'static str;

    /// The current schema version of this event's payload.
    fn schema_version(&self) -> u32;

    /// Serialises the payload.
    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error>;

    /// Deserialises a payload of the given current type from JSON text.
    fn decode_str(event_type: &str, json: &str) -> Result<Self, DecodeError>;

    /// Deserialises a payload of the given current type from a JSON value.
    fn decode_value(event_type: &str, json: serde_json::Value) -> Result<Self, DecodeError>;
}

/// Declares an enum of domain events and implements [`DomainEvent`] for it.
///
/// Each variant wraps one serde payload type and names its stable type name and
/// current schema version. Each payload type may appear once (a `From` impl is
/// generated for it).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// pub struct Opened { pub owner: String }
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// pub struct Deposited { pub cents: i64 }
///
/// tidemark::domain_events! {
///     #[derive(Debug, Clone, PartialEq)]
///     pub enum AccountEvent {
///         Opened(Opened) = ("AccountOpened", 1),
///         Deposited(Deposited) = ("MoneyDeposited", 2),
///     }
/// }
///
/// use tidemark::DomainEvent;
/// let e = AccountEvent::from(Deposited { cents: 5 });
/// assert_eq!((e.event_type(), e.schema_version()), ("MoneyDeposited", 2));
/// let back = AccountEvent::decode_str("MoneyDeposited", r#"{"cents":5}"#).unwrap();
/// assert_eq!(back, e);
/// ```
#[macro_export]
macro_rules! domain_events {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident ( $payload:ty ) = ( $type_name:literal, $version:literal )
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant($payload), )+
        }

        $(
            impl ::core::convert::From<$payload> for $name {
                fn from(payload: $payload) -> Self {
                    Self::$variant(payload)
                }
            }
        )+

        impl $crate::DomainEvent for $name {
            const TYPES: &'static [$crate::EventType] = &[
                $( $crate::EventType { name: $type_name, version: $version }, )+
            ];

            fn event_type(&self) -> &'static str {
                match self { $( Self::$variant(_) => $type_name, )+ }
            }

            fn schema_version(&self) -> u32 {
                match self { $( Self::$variant(_) => $version, )+ }
            }

            fn encode(&self) -> ::core::result::Result<
                ::std::boxed::Box<$crate::__private::RawValue>,
                $crate::__private::serde_json::Error,
            > {
                match self {
                    $( Self::$variant(p) => $crate::__private::serde_json::value::to_raw_value(p), )+
                }
            }

            fn decode_str(
                event_type: &str,
                json: &str,
            ) -> ::core::result::Result<Self, $crate::DecodeError> {
                match event_type {
                    $( $type_name => $crate::__private::serde_json::from_str::<$payload>(json)
                        .map(Self::$variant)
                        .map_err($crate::DecodeError::Payload), )+
                    _ => ::core::result::Result::Err($crate::DecodeError::UnknownType),
                }
            }

            fn decode_value(
                event_type: &str,
                json: $crate::__private::serde_json::Value,
            ) -> ::core::result::Result<Self, $crate::DecodeError> {
                match event_type {
                    $( $type_name => $crate::__private::serde_json::from_value::<$payload>(json)
                        .map(Self::$variant)
                        .map_err($crate::DecodeError::Payload), )+
                    _ => ::core::result::Result::Err($crate::DecodeError::UnknownType),
                }
            }
        }
    };
}

/// An event ready to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Its id; fresh UUID v7 by default.
    pub event_id: EventId,
    /// The stable type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload, as JSON text.
    pub payload: Box<RawValue>,
    /// Its metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Builds an event from raw parts, with a fresh id and empty metadata.
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Box<RawValue>) -> Self {
        Self {
            event_id: EventId::new(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Encodes a domain event, with a fresh id.
    pub fn from_domain<E: DomainEvent>(event: &E, metadata: Metadata) -> Result<Self> {
        let payload =
            event.encode().map_err(|source| Error::Encode { event_type: event.event_type().to_owned(), source })?;
        let mut new = Self::new(event.event_type(), event.schema_version(), payload);
        new.metadata = metadata;
        Ok(new)
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Replaces the id.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.event_id = id;
        self
    }

    /// The size counted against a store's event size limit: payload plus metadata, in bytes.
    pub fn size(&self) -> usize {
        self.payload.get().len() + self.metadata.approximate_size() + self.event_type.len()
    }
}

/// An event as stored, with its payload still in stored (possibly old) form.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// The event's id.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (1 for the first event).
    pub stream_version: StreamVersion,
    /// Its position in the global log.
    pub position: LogPosition,
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// The stored payload.
    pub payload: Box<RawValue>,
    /// Its metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// A decoded event (upcast to the current schema) with everything the store knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E> {
    /// The event's id.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream.
    pub stream_version: StreamVersion,
    /// Its position in the global log.
    pub position: LogPosition,
    /// Its metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The event itself.
    pub event: E,
}

//! The headers of a published event, and their parser.

use std::error::Error as StdError;
use std::str::FromStr;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, SecondsFormat, Utc};
use tidemark::trace::{TRACEPARENT, TRACESTATE};
use tidemark::{EventId, LogPosition, RecordedEvent, StreamId, StreamVersion};
use uuid::Uuid;

use crate::escape::{escape, unescape, ValueError};
use crate::signature::HEADER_SIGNATURE;
use crate::subject::token_problem;

/// The event id (`<event id>:v<N>` on a downcast copy); JetStream drops a second message
/// with the same id within the stream's duplicate window.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// The stream id, such as `order-42`.
pub const HEADER_STREAM_ID: &str = "Tidemark-Stream-Id";
/// The event's version in its stream (1 for the first event), in decimal.
pub const HEADER_STREAM_VERSION: &str = "Tidemark-Stream-Version";
/// The stored event type name.
pub const HEADER_EVENT_TYPE: &str = "Tidemark-Event-Type";
/// The stored schema version of the payload, in decimal.
pub const HEADER_SCHEMA_VERSION: &str = "Tidemark-Schema-Version";
/// The event's position in the global log, `<transaction>/<sequence>`.
pub const HEADER_POSITION: &str = "Tidemark-Position";
/// The correlation id (a UUID), when the event has one.
pub const HEADER_CORRELATION_ID: &str = "Tidemark-Correlation-Id";
/// The causation id (a UUID), when the event has one.
pub const HEADER_CAUSATION_ID: &str = "Tidemark-Causation-Id";
/// When the store recorded the event, RFC 3339 in UTC with microseconds.
pub const HEADER_RECORDED_AT: &str = "Tidemark-Recorded-At";
/// The acting user, when known; percent-escaped (see the crate documentation).
pub const HEADER_USER: &str = "Tidemark-User";
/// The tenant, when known; percent-escaped (see the crate documentation).
pub const HEADER_TENANT: &str = "Tidemark-Tenant";
/// `true` on a thin notification: the payload is empty, fetch the event by id.
pub const HEADER_THIN: &str = "Tidemark-Thin";
/// On a downcast copy only: the stored schema version its payload was downcast from.
pub const HEADER_DOWNCAST_OF: &str = "Tidemark-Downcast-Of";
/// The W3C `traceparent` recorded in the event's metadata, when it is valid. Not covered
/// by the message's signature.
pub const HEADER_TRACEPARENT: &str = TRACEPARENT;
/// The W3C `tracestate` recorded with it, when valid. Not covered by the signature.
pub const HEADER_TRACESTATE: &str = TRACESTATE;

/// Why the headers of a message are not those of a tidemark event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// A required header is absent.
    #[error("missing header {header}")]
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// A header's value cannot be read.
    #[error("invalid header {header} value {value:?}: {source}")]
    Invalid {
        /// The header's name.
        header: &'static str,
        /// The value found.
        value: String,
        /// Why it was rejected.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl HeaderError {
    /// The name of the missing or invalid header.
    pub fn header(&self) -> &'static str {
        match self {
            Self::Missing { header } | Self::Invalid { header, .. } => header,
        }
    }
}

/// Everything a published event carries in its headers.
///
/// ```
/// # use tidemark_nats::EventHeaders;
/// # fn demo(message: &async_nats::Message) -> Result<(), tidemark_nats::HeaderError> {
/// let headers = EventHeaders::parse(message.headers.as_ref())?;
/// println!("{} v{} of {}", headers.event_type, headers.schema_version, headers.stream_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventHeaders {
    /// The event's id (`Nats-Msg-Id`).
    pub event_id: EventId,
    /// Its stream.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub stream_version: StreamVersion,
    /// Its stored type name.
    pub event_type: String,
    /// Its stored schema version.
    pub schema_version: u32,
    /// Its position in the global log.
    pub position: LogPosition,
    /// Its correlation id.
    pub correlation_id: Option<Uuid>,
    /// Its causation id.
    pub causation_id: Option<Uuid>,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The acting user.
    pub user: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// Whether the message is a thin notification (empty payload).
    pub thin: bool,
    /// On a downcast copy, the stored schema version it was downcast from
    /// (`schema_version` is then the older version of its payload); `None` on the event.
    pub downcast_of: Option<u32>,
}

impl EventHeaders {
    /// The headers of a stored event, published in full (`thin` false).
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            position: event.position,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            recorded_at: event.recorded_at,
            user: event.metadata.user.clone(),
            tenant: event.metadata.tenant.clone(),
            thin: false,
            downcast_of: None,
        }
    }

    /// Marks the headers as those of a thin notification, or not.
    pub fn with_thin(mut self, thin: bool) -> Self {
        self.thin = thin;
        self
    }

    /// The headers of a downcast copy of the event: schema version `schema_version`,
    /// downcast from the stored one.
    pub fn downcast_to(mut self, schema_version: u32) -> Self {
        self.downcast_of = Some(self.downcast_of.unwrap_or(self.schema_version));
        self.schema_version = schema_version;
        self
    }

    /// The `Nats-Msg-Id`: the event id, or `<event id>:v<schema version>` on a downcast
    /// copy, so that a copy is deduplicated on its own and never as the event.
    pub fn msg_id(&self) -> String {
        match self.downcast_of {
            None => self.event_id.to_string(),
            Some(_) => format!("{}:v{}", self.event_id, self.schema_version),
        }
    }

    /// The NATS header map. Free text (event type, user, tenant) is percent-escaped, so
    /// any value is carried safely.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        // `from_static` makes a name without parsing or allocating it.
        let mut put =
            |name: &'static str, value: String| map.insert(HeaderName::from_static(name), header_value(value));
        put(HEADER_MSG_ID, self.msg_id());
        put(HEADER_STREAM_ID, self.stream_id.to_string());
        put(HEADER_STREAM_VERSION, self.stream_version.to_string());
        put(HEADER_EVENT_TYPE, escape(&self.event_type));
        put(HEADER_SCHEMA_VERSION, self.schema_version.to_string());
        put(HEADER_POSITION, self.position.to_string());
        put(HEADER_RECORDED_AT, self.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true));
        if let Some(id) = self.correlation_id {
            put(HEADER_CORRELATION_ID, id.to_string());
        }
        if let Some(id) = self.causation_id {
            put(HEADER_CAUSATION_ID, id.to_string());
        }
        if let Some(user) = &self.user {
            put(HEADER_USER, escape(user));
        }
        if let Some(tenant) = &self.tenant {
            put(HEADER_TENANT, escape(tenant));
        }
        if self.thin {
            put(HEADER_THIN, "true".to_owned());
        }
        if let Some(version) = self.downcast_of {
            put(HEADER_DOWNCAST_OF, version.to_string());
        }
        map
    }

    /// Reads the headers of a message (`None` when it has none), naming the first missing
    /// or invalid header in the error. A downcast copy's `Nats-Msg-Id` must be
    /// `<event id>:v<schema version>` and its `Tidemark-Downcast-Of` above its schema
    /// version; any other message's `Nats-Msg-Id` is the bare event id.
    pub fn parse(headers: Option<&HeaderMap>) -> Result<Self, HeaderError> {
        let empty = HeaderMap::new();
        Self::read(&Headers::read(headers.unwrap_or(&empty)))
    }

    /// [`parse`](Self::parse) on the headers of a message read already.
    pub(crate) fn read(h: &Headers<'_>) -> Result<Self, HeaderError> {
        let (event_id, copy_version) = h.required(HEADER_MSG_ID, msg_id)?;
        let parsed = Self {
            event_id: EventId(event_id),
            stream_id: h.required(HEADER_STREAM_ID, StreamId::from_str)?,
            stream_version: StreamVersion(h.required(HEADER_STREAM_VERSION, positive)?),
            event_type: h.required(HEADER_EVENT_TYPE, event_type)?,
            schema_version: h.required(HEADER_SCHEMA_VERSION, schema_version)?,
            position: h.required(HEADER_POSITION, LogPosition::from_str)?,
            correlation_id: h.optional(HEADER_CORRELATION_ID, Uuid::from_str)?,
            causation_id: h.optional(HEADER_CAUSATION_ID, Uuid::from_str)?,
            recorded_at: h.required(HEADER_RECORDED_AT, recorded_at)?,
            user: h.optional(HEADER_USER, unescape)?,
            tenant: h.optional(HEADER_TENANT, unescape)?,
            thin: h.optional(HEADER_THIN, thin)?.unwrap_or(false),
            downcast_of: h.optional(HEADER_DOWNCAST_OF, schema_version)?,
        };
        if parsed.downcast_of.is_some_and(|original| original <= parsed.schema_version) {
            return Err(h.invalid(HEADER_DOWNCAST_OF, "a copy is downcast from a version above its schema version"));
        }
        if copy_version != parsed.downcast_of.map(|_| parsed.schema_version) {
            return Err(h.invalid(HEADER_MSG_ID, "`<event id>:v<schema version>` on a downcast copy only"));
        }
        Ok(parsed)
    }
}

fn header_value(text: String) -> HeaderValue {
    // Every value above is escaped or built from digits, UUIDs, dates and stream ids, so
    // it holds no CR or LF; an empty value (rejected by the parser) is the safe fallback.
    // Checked here, the value is moved in rather than copied.
    if text.contains(['\r', '\n']) {
        return HeaderValue::default();
    }
    HeaderValue::from(text)
}

/// Every header the parser reads, in one array so that a message's headers are sorted
/// into it in one pass over the map (a lookup by name per header allocates the name and
/// hashes it, for each of a dozen headers of every message).
const KNOWN: [&str; 13] = [
    HEADER_MSG_ID,
    HEADER_STREAM_ID,
    HEADER_STREAM_VERSION,
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    HEADER_POSITION,
    HEADER_CORRELATION_ID,
    HEADER_CAUSATION_ID,
    HEADER_RECORDED_AT,
    HEADER_USER,
    HEADER_TENANT,
    HEADER_THIN,
    HEADER_DOWNCAST_OF,
];

/// The first value of each header a tidemark event carries, in a fixed order (the
/// message's signature covers them in this order).
pub(crate) fn known_values(map: &HeaderMap) -> [Option<&str>; KNOWN.len()] {
    Headers::read(map).known
}

/// The first value of each header of one message that a consumer reads, sorted out of
/// the map in one pass: the known ones, the signature and the trace context.
pub(crate) struct Headers<'a> {
    /// The values of [`KNOWN`], in its order.
    pub(crate) known: [Option<&'a str>; KNOWN.len()],
    /// The message's signature ([`HEADER_SIGNATURE`]).
    pub(crate) signature: Option<&'a str>,
    /// The W3C `traceparent`.
    pub(crate) traceparent: Option<&'a str>,
    /// The W3C `tracestate`.
    pub(crate) tracestate: Option<&'a str>,
}

impl<'a> Headers<'a> {
    /// Reads `map`. Names match exactly, as `HeaderMap::get` matches them.
    pub(crate) fn read(map: &'a HeaderMap) -> Self {
        let mut read = Self { known: [None; KNOWN.len()], signature: None, traceparent: None, tracestate: None };
        for (name, values) in map.iter() {
            let value = values.first().map(HeaderValue::as_str);
            match name.as_ref() {
                HEADER_SIGNATURE => read.signature = value,
                TRACEPARENT => read.traceparent = value,
                TRACESTATE => read.tracestate = value,
                name => {
                    if let Some(i) = KNOWN.iter().position(|known| *known == name) {
                        read.known[i] = value;
                    }
                }
            }
        }
        read
    }

    fn get(&self, header: &str) -> Option<&'a str> {
        KNOWN.iter().position(|known| *known == header).and_then(|i| self.known[i])
    }

    fn required<T, E>(&self, header: &'static str, read: impl Fn(&str) -> Result<T, E>) -> Result<T, HeaderError>
    where
        E: StdError + Send + Sync + 'static,
    {
        self.optional(header, read)?.ok_or(HeaderError::Missing { header })
    }

    fn optional<T, E>(
        &self,
        header: &'static str,
        read: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, HeaderError>
    where
        E: StdError + Send + Sync + 'static,
    {
        let Some(value) = self.get(header) else { return Ok(None) };
        read(value).map(Some).map_err(|e| HeaderError::Invalid { header, value: value.to_owned(), source: Box::new(e) })
    }

    /// The error for a header whose value is readable but does not fit the others.
    fn invalid(&self, header: &'static str, reason: &'static str) -> HeaderError {
        let value = self.get(header).map(str::to_owned).unwrap_or_default();
        HeaderError::Invalid { header, value, source: Box::new(ValueError(reason)) }
    }
}

/// An event id, with the schema version of a downcast copy when it has the `:v<N>` suffix.
fn msg_id(text: &str) -> Result<(Uuid, Option<u32>), ValueError> {
    let (id, version) = match text.split_once(":v") {
        Some((id, version)) => (id, Some(schema_version(version)?)),
        None => (text, None),
    };
    let id = Uuid::from_str(id).map_err(|_| ValueError("a UUID, or `<UUID>:v<N>` on a downcast copy, is expected"))?;
    Ok((id, version))
}

fn positive(text: &str) -> Result<u64, ValueError> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ValueError("a positive decimal integer is expected")),
    }
}

fn schema_version(text: &str) -> Result<u32, ValueError> {
    u32::try_from(positive(text)?).map_err(|_| ValueError("a schema version fits 32 bits"))
}

fn event_type(text: &str) -> Result<String, ValueError> {
    let name = unescape(text)?;
    match token_problem(&name) {
        None if name.len() <= 128 => Ok(name),
        None => Err(ValueError("an event type name is at most 128 bytes")),
        Some(reason) => Err(ValueError(reason)),
    }
}

fn recorded_at(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

fn thin(text: &str) -> Result<bool, ValueError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueError("`true` or `false` is expected")),
    }
}

//! The subject scheme: `<prefix>.<partition>.<category>.<EventType>.v<N>`.

use std::fmt;

use tidemark::{RecordedEvent, StreamId};

/// Default subject prefix.
pub const DEFAULT_PREFIX: &str = "tidemark";

/// Default number of partitions.
pub const DEFAULT_PARTITIONS: u32 = 16;

/// Why a prefix, a subject token or a partition number cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The prefix is not one or more valid tokens separated by single dots.
    #[error("invalid subject prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A value taken from an event (its category or type) cannot be a subject token.
    #[error("invalid {what} {value:?} for a subject token: {reason}")]
    InvalidToken {
        /// What the value is: `category` or `event type`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A schema version of 0 (versions start at 1).
    #[error("invalid schema version 0 for a subject: versions start at 1")]
    InvalidSchemaVersion,
    /// The scheme was configured with zero partitions.
    #[error("the number of partitions must be at least 1")]
    NoPartitions,
    /// A partition number at or above the partition count.
    #[error("partition {partition} does not exist: there are {partitions}, numbered from 0")]
    NoSuchPartition {
        /// The requested partition.
        partition: u32,
        /// The configured number of partitions.
        partitions: u32,
    },
}

/// What is wrong with `token` as a subject token, if anything: it must be 1 to 256 bytes
/// of ASCII letters, digits, `_` and `-` (so no `.`, `*`, `>`, whitespace or controls).
pub fn token_problem(token: &str) -> Option<&'static str> {
    if token.is_empty() {
        return Some("a subject token may not be empty");
    }
    if token.len() > 256 {
        return Some("a subject token is at most 256 bytes");
    }
    let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-';
    (!token.as_bytes().iter().all(ok)).then_some("a subject token holds only ASCII letters, digits, '_' and '-'")
}

/// Whether `text` is `n` written as `format!("{n}")` writes it: decimal digits only, no
/// sign, no leading zero.
fn decimal_is(text: &str, n: u32) -> bool {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    digits && canonical && text.parse::<u32>() == Ok(n)
}

/// How events map to subjects, and the filters consumers subscribe with.
///
/// An event's subject is `<prefix>.<partition>.<category>.<EventType>.v<N>`:
/// - `prefix`: one or more tokens separated by dots (default `tidemark`);
/// - `partition`: [`StreamId::partition`] (FNV-1a of the id, modulo `partitions`), in decimal, so every event
///   of a stream lands in the same partition and keeps its order there;
/// - `category`: the stream id's category (the part before the first `-`);
/// - `EventType` and `N`: the stored type name and schema version.
///
/// ```
/// use tidemark_nats::SubjectScheme;
/// let scheme = SubjectScheme::new("shop.events", 8)?;
/// let stream = tidemark::StreamId::new("order-42")?;
/// assert_eq!(scheme.partition_of(&stream), 4);
/// assert_eq!(scheme.subject(&stream, "OrderPlaced", 2)?, "shop.events.4.order.OrderPlaced.v2");
/// assert_eq!(scheme.partition_filter(3)?, "shop.events.3.>");
/// assert_eq!(scheme.category_filter("order")?, "shop.events.*.order.>");
/// assert_eq!(scheme.event_type_filter("OrderPlaced", 2)?, "shop.events.*.*.OrderPlaced.v2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Changing the number of partitions moves streams to other partitions: consumers per
/// partition must then be rebuilt, so choose it once per deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectScheme {
    prefix: String,
    partitions: u32,
}

impl Default for SubjectScheme {
    /// Prefix [`DEFAULT_PREFIX`], [`DEFAULT_PARTITIONS`] partitions.
    fn default() -> Self {
        Self { prefix: DEFAULT_PREFIX.to_owned(), partitions: DEFAULT_PARTITIONS }
    }
}

impl SubjectScheme {
    /// Validates the prefix and the partition count (at least 1).
    pub fn new(prefix: impl Into<String>, partitions: u32) -> Result<Self, SubjectError> {
        let prefix = prefix.into();
        if let Some(reason) = prefix_problem(&prefix) {
            return Err(SubjectError::InvalidPrefix { prefix, reason });
        }
        if partitions == 0 {
            return Err(SubjectError::NoPartitions);
        }
        Ok(Self { prefix, partitions })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition of a stream: [`StreamId::partition`].
    pub fn partition_of(&self, stream: &StreamId) -> u32 {
        stream.partition(self.partitions)
    }

    /// The subject of an event of `stream` with the given type and schema version.
    pub fn subject(&self, stream: &StreamId, event_type: &str, version: u32) -> Result<String, SubjectError> {
        let category = token("category", stream.category())?;
        let event_type = token("event type", event_type)?;
        if version == 0 {
            return Err(SubjectError::InvalidSchemaVersion);
        }
        Ok(format!("{}.{}.{category}.{event_type}.v{version}", self.prefix, self.partition_of(stream)))
    }

    /// Whether `subject` is the subject of an event of `stream` with the given type and
    /// schema version: the same answer as comparing it with [`subject`](Self::subject)'s,
    /// without building that string (a consumer checks every message it takes in).
    pub fn is_subject(
        &self,
        subject: &str,
        stream: &StreamId,
        event_type: &str,
        version: u32,
    ) -> Result<bool, SubjectError> {
        let category = token("category", stream.category())?;
        let event_type = token("event type", event_type)?;
        if version == 0 {
            return Err(SubjectError::InvalidSchemaVersion);
        }
        let Some(rest) = subject.strip_prefix(self.prefix.as_str()).and_then(|r| r.strip_prefix('.')) else {
            return Ok(false);
        };
        let mut tokens = rest.split('.');
        let matches = tokens.next().is_some_and(|t| decimal_is(t, self.partition_of(stream)))
            && tokens.next() == Some(category)
            && tokens.next() == Some(event_type)
            && tokens.next().and_then(|t| t.strip_prefix('v')).is_some_and(|t| decimal_is(t, version))
            && tokens.next().is_none();
        Ok(matches)
    }

    /// The subject of a stored event.
    pub fn subject_of(&self, event: &RecordedEvent) -> Result<String, SubjectError> {
        self.subject(&event.stream_id, &event.event_type, event.schema_version)
    }

    /// Everything the scheme publishes: `<prefix>.>` (the stream's subject).
    pub fn all_filter(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// Every event of one partition: `<prefix>.<partition>.>`.
    pub fn partition_filter(&self, partition: u32) -> Result<String, SubjectError> {
        if partition >= self.partitions {
            return Err(SubjectError::NoSuchPartition { partition, partitions: self.partitions });
        }
        Ok(format!("{}.{partition}.>", self.prefix))
    }

    /// Every event of one category, in every partition: `<prefix>.*.<category>.>`.
    pub fn category_filter(&self, category: &str) -> Result<String, SubjectError> {
        Ok(format!("{}.*.{}.>", self.prefix, token("category", category)?))
    }

    /// Every event of one type and schema version, in every partition and category:
    /// `<prefix>.*.*.<EventType>.v<N>`.
    pub fn event_type_filter(&self, event_type: &str, schema_version: u32) -> Result<String, SubjectError> {
        if schema_version == 0 {
            return Err(SubjectError::InvalidSchemaVersion);
        }
        Ok(format!("{}.*.*.{}.v{schema_version}", self.prefix, token("event type", event_type)?))
    }
}

impl fmt::Display for SubjectScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<0..{}>.<category>.<EventType>.v<N>", self.prefix, self.partitions)
    }
}

fn token<'a>(what: &'static str, value: &'a str) -> Result<&'a str, SubjectError> {
    match token_problem(value) {
        None => Ok(value),
        Some(reason) => Err(SubjectError::InvalidToken { what, value: value.to_owned(), reason }),
    }
}

fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return Some("a prefix has at least one token");
    }
    prefix.split('.').find_map(token_problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme() -> SubjectScheme {
        SubjectScheme::new("app.events", 8).expect("valid")
    }

    fn stream(id: &str) -> StreamId {
        StreamId::new(id).expect("valid stream id")
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        let s = scheme();
        assert_eq!(s.partition_of(&stream("order-42")), stream("order-42").partition(8));
        assert_eq!(s.partition_of(&stream("order-42")), 0x5724_46f4_u32 % 8);
        for n in 0..1000 {
            assert!(s.partition_of(&stream(&format!("order-{n}"))) < 8);
        }
        let one = SubjectScheme::new("x", 1).expect("valid");
        assert_eq!(one.partition_of(&stream("anything")), 0);
    }

    #[test]
    fn subjects_follow_the_scheme() {
        let s = scheme();
        let p = s.partition_of(&stream("order-7"));
        assert_eq!(s.subject(&stream("order-7"), "OrderPlaced", 3), Ok(format!("app.events.{p}.order.OrderPlaced.v3")));
        let q = s.partition_of(&stream("single"));
        assert_eq!(s.subject(&stream("single"), "Made_it-2", 1), Ok(format!("app.events.{q}.single.Made_it-2.v1")));
    }

    #[test]
    fn is_subject_answers_as_comparing_with_the_built_subject() {
        let s = scheme();
        let order = stream("order-7");
        let p = s.partition_of(&order);
        let candidates = [
            format!("app.events.{p}.order.OrderPlaced.v3"),
            format!("app.events.0{p}.order.OrderPlaced.v3"),
            format!("app.events.+{p}.order.OrderPlaced.v3"),
            format!("app.events.{p}.order.OrderPlaced.v03"),
            format!("app.events.{p}.order.OrderPlaced.v+3"),
            format!("app.events.{p}.order.OrderPlaced.3"),
            format!("app.events.{p}.order.OrderPlaced.v3.extra"),
            format!("app.events.{p}.order.OrderPlaced"),
            format!("app.events.{}.order.OrderPlaced.v3", p + 1),
            format!("app.eventsx.{p}.order.OrderPlaced.v3"),
            format!("app.{p}.order.OrderPlaced.v3"),
            format!("app.events.{p}.orders.OrderPlaced.v3"),
            format!("app.events.{p}.order.OrderPlace.v3"),
            format!("app.events.{p}.order.OrderPlaced.v4"),
            format!("app.events.{p}.order.OrderPlaced.v"),
            String::new(),
        ];
        let built = s.subject(&order, "OrderPlaced", 3).expect("a valid subject");
        for candidate in &candidates {
            let answer = s.is_subject(candidate, &order, "OrderPlaced", 3);
            assert_eq!(answer, Ok(*candidate == built), "{candidate:?}");
        }
        assert_eq!(s.is_subject(&built, &order, "Order.Placed", 3), s.subject(&order, "Order.Placed", 3).map(|_| true));
        assert_eq!(s.is_subject(&built, &order, "OrderPlaced", 0), Err(SubjectError::InvalidSchemaVersion));
    }

    #[test]
    fn prefixes_are_validated_token_by_token() {
        for good in ["a", "app.events", "A_b-1.c", "x.y.z"] {
            assert!(SubjectScheme::new(good, 1).is_ok(), "{good}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a*", "a.>", "a b", "a\tb", "a\nb", "é", "a.*.b", ">"] {
            assert!(
                matches!(SubjectScheme::new(bad, 1), Err(SubjectError::InvalidPrefix { ref prefix, .. }) if prefix == bad),
                "{bad:?}"
            );
        }
        assert_eq!(SubjectScheme::new("a", 0), Err(SubjectError::NoPartitions));
    }

    #[test]
    fn tokens_from_events_are_validated() {
        let s = scheme();
        for bad in ["", "a.b", "a*", "a>", "a b", "a\r\nb", "ü", &"x".repeat(257)] {
            let err = s.subject(&stream("order-1"), bad, 1).expect_err(bad);
            assert!(matches!(err, SubjectError::InvalidToken { what: "event type", .. }), "{bad:?}");
            assert!(matches!(s.category_filter(bad), Err(SubjectError::InvalidToken { what: "category", .. })));
            assert!(matches!(s.event_type_filter(bad, 1), Err(SubjectError::InvalidToken { .. })));
        }
        assert_eq!(s.subject(&stream("order-1"), "A", 0), Err(SubjectError::InvalidSchemaVersion));
        assert_eq!(s.event_type_filter("A", 0), Err(SubjectError::InvalidSchemaVersion));
    }

    #[test]
    fn filters() {
        let s = scheme();
        assert_eq!(s.all_filter(), "app.events.>");
        assert_eq!(s.partition_filter(7), Ok("app.events.7.>".to_owned()));
        assert_eq!(s.partition_filter(8), Err(SubjectError::NoSuchPartition { partition: 8, partitions: 8 }));
        assert_eq!(s.category_filter("order"), Ok("app.events.*.order.>".to_owned()));
        assert_eq!(s.event_type_filter("OrderPlaced", 2), Ok("app.events.*.*.OrderPlaced.v2".to_owned()));
    }
}

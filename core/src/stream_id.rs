//! Validated stream identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidStreamId;

/// Maximum length of a stream id, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 128;

/// The id of an event stream, usually one aggregate instance, such as `order-42`.
///
/// Rules, chosen so that an id can be carried as a single NATS subject token and in
/// URLs without escaping:
/// - 1 to [`MAX_STREAM_ID_LEN`] bytes;
/// - only ASCII letters, digits, `-` and `_`;
/// - it starts with a letter or digit.
///
/// The *category* is the part before the first `-` (the whole id when there is none):
/// `order-42` belongs to category `order`.
///
/// ```
/// use tidemark::StreamId;
/// let id = StreamId::new("order-42")?;
/// assert_eq!(id.category(), "order");
/// assert!(StreamId::new("order.42").is_err());
/// # Ok::<(), tidemark::InvalidStreamId>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidStreamId> {
        let id = id.into();
        match check(&id) {
            Ok(()) => Ok(Self(id)),
            Err(reason) => Err(InvalidStreamId { id, reason }),
        }
    }

    /// Builds `<category>-<id>`; the category may not contain `-`.
    pub fn for_entity(category: &str, id: impl fmt::Display) -> Result<Self, InvalidStreamId> {
        if category.contains('-') || category.is_empty() {
            return Err(InvalidStreamId { id: category.to_owned(), reason: "a category is non-empty and has no '-'" });
        }
        Self::new(format!("{category}-{id}"))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The partition of this stream among `partitions` (at least one): the FNV-1a 32-bit
    /// hash of the id's UTF-8 bytes modulo `partitions`. It is the same in every process and
    /// release, so the in-process bus, the broker's subjects and the runners' coordination
    /// all place a stream, and so keep its events in order, in the same partition.
    ///
    /// ```
    /// use tidemark::StreamId;
    /// let id = StreamId::new("order-42")?;
    /// assert!(id.partition(8) < 8);
    /// assert_eq!(id.partition(1), 0);
    /// # Ok::<(), tidemark::InvalidStreamId>(())
    /// ```
    pub fn partition(&self, partitions: u32) -> u32 {
        crate::hash::fnv1a_32(self.0.as_bytes()) % partitions.max(1)
    }

    /// The part before the first `-`, or the whole id.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }
}

fn check(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("a stream id may not be empty");
    }
    if id.len() > MAX_STREAM_ID_LEN {
        return Err("a stream id is at most 128 bytes");
    }
    if !id.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("a stream id starts with an ASCII letter or digit");
    }
    let ok = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if !id.as_bytes().iter().all(ok) {
        return Err("a stream id holds only ASCII letters, digits, '-' and '_'");
    }
    Ok(())
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["order-1", "a", "Order_2-x-y", "0190a3b2-7c4d-7e00-8000-000000000000"] {
            assert!(StreamId::new(id).is_ok(), "{id}");
        }
        assert!(StreamId::new("x".repeat(MAX_STREAM_ID_LEN)).is_ok());
    }

    #[test]
    fn rejects_subject_breaking_and_odd_ids() {
        let long = "x".repeat(MAX_STREAM_ID_LEN + 1);
        for id in ["", "a.b", "a*", "a>b", "a b", "a\tb", "-a", "_a", "é", "a/b", &long] {
            let err = StreamId::new(id).expect_err(id);
            assert_eq!(err.id, id);
        }
    }

    #[test]
    fn category_is_the_prefix() {
        assert_eq!(StreamId::new("order-1-2").map(|s| s.category().to_owned()).ok(), Some("order".into()));
        assert_eq!(StreamId::new("single").map(|s| s.category().to_owned()).ok(), Some("single".into()));
        assert!(StreamId::for_entity("or-der", 1).is_err());
        assert_eq!(StreamId::for_entity("order", 7).map(|s| s.to_string()).ok(), Some("order-7".into()));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<StreamId>("\"a.b\"").is_err());
        assert!(serde_json::from_str::<StreamId>("\"a-b\"").is_ok());
    }
}

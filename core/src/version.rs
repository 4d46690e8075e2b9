//! Stream versions, expected versions and positions in the global log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The version of a stream: the number of events in it, which is also the version of
/// its last event. The first event of a stream has version 1; `StreamVersion(0)` means
/// the stream has no events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamVersion(pub u64);

impl StreamVersion {
    /// The version of a stream without events.
    pub const EMPTY: Self = Self(0);

    /// The version after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer believes about the stream it appends to (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExpectedVersion {
    /// No check: append after whatever the stream holds.
    Any,
    /// The stream must not exist yet (have no events).
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream must be exactly at this version (`Exact(StreamVersion(0))` equals `NoStream`).
    Exact(StreamVersion),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn accepts(self, actual: StreamVersion) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == StreamVersion::EMPTY,
            Self::StreamExists => actual > StreamVersion::EMPTY,
            Self::Exact(v) => actual == v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// A position in the global log, and the cursor for reading it.
///
/// The log is ordered by the pair (`transaction_id`, `sequence`): `transaction_id` is the
/// committing transaction's id (in PostgreSQL, the 64-bit `xid8`), `sequence` the
/// event's unique global sequence number. Readers only ever move forward over pairs
/// whose transactions have finished, which is what makes the log gap-safe: see the
/// PostgreSQL store's documentation. Stores without concurrent transactions use the
/// same number for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LogPosition {
    /// The id of the transaction that wrote the event.
    #[serde(alias = "transaction")]
    pub transaction_id: u64,
    /// The event's global sequence number (unique, increasing, may have holes).
    pub sequence: u64,
}

impl LogPosition {
    /// Before the first event: reading after it starts at the beginning of the log.
    pub const START: Self = Self { transaction_id: 0, sequence: 0 };

    /// Builds a position from its parts.
    pub fn new(transaction_id: u64, sequence: u64) -> Self {
        Self { transaction_id, sequence }
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.transaction_id, self.sequence)
    }
}

/// Error from parsing a [`LogPosition`] written as `transaction/sequence`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a log position is written as <transaction_id>/<sequence>, both unsigned integers: {0:?}")]
pub struct ParseLogPositionError(pub String);

impl FromStr for LogPosition {
    type Err = ParseLogPositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLogPositionError(s.to_owned());
        let (t, q) = s.split_once('/').ok_or_else(err)?;
        Ok(Self::new(t.parse().map_err(|_| err())?, q.parse().map_err(|_| err())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_transaction_first() {
        assert!(LogPosition::new(1, 9) < LogPosition::new(2, 3));
        assert!(LogPosition::new(2, 3) < LogPosition::new(2, 4));
        assert!(LogPosition::START < LogPosition::new(0, 1));
    }

    #[test]
    fn positions_round_trip_through_text() {
        let p = LogPosition::new(77, 12);
        assert_eq!(p.to_string().parse::<LogPosition>(), Ok(p));
        assert!("77".parse::<LogPosition>().is_err());
        assert!("a/1".parse::<LogPosition>().is_err());
    }

    #[test]
    fn expectations() {
        let (empty, one) = (StreamVersion::EMPTY, StreamVersion(1));
        assert!(ExpectedVersion::Any.accepts(empty) && ExpectedVersion::Any.accepts(one));
        assert!(ExpectedVersion::NoStream.accepts(empty) && !ExpectedVersion::NoStream.accepts(one));
        assert!(!ExpectedVersion::StreamExists.accepts(empty));
        assert!(ExpectedVersion::StreamExists.accepts(one));
        assert!(ExpectedVersion::Exact(one).accepts(one) && !ExpectedVersion::Exact(one).accepts(empty));
    }
}

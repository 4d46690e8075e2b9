//! The first release's orders, committed as JSON lines, for importing into a store.
//!
//! Each line of `fixtures/v1-orders.jsonl` is one stored event of that release:
//! `{"stream_id", "stream_version", "event_type", "schema_version", "payload", "recorded_at"}`,
//! in the order it was recorded. Its `OrderPlaced` events are schema version 1, which
//! [`codec`](super::codec) upcasts on every read.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use tidemark::{InvalidStreamId, Metadata, NewEvent, StreamId, StreamVersion};

/// The committed fixture: twenty events of seven orders from the first release.
pub const V1_ORDERS: &str = include_str!("../../fixtures/v1-orders.jsonl");

/// The metadata header that keeps an imported event's original `recorded_at` (RFC 3339).
pub const RECORDED_AT_HEADER: &str = "original_recorded_at";

/// One event of a fixture, ready to append.
#[derive(Debug, Clone)]
pub struct FixtureEvent {
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream (1 for the first event).
    pub stream_version: StreamVersion,
    /// When the earlier release recorded it; also in the [`RECORDED_AT_HEADER`] header.
    pub recorded_at: DateTime<Utc>,
    /// The event as stored then: type, schema version and payload unchanged.
    pub event: NewEvent,
}

/// Why a fixture could not be read. Lines are numbered from 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// A line is not a fixture event object.
    #[error("fixture line {line}: {source}")]
    Json {
        /// The line number.
        line: usize,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// A line's stream id breaks the stream id rules.
    #[error("fixture line {line}: {source}")]
    StreamId {
        /// The line number.
        line: usize,
        /// The rule broken.
        #[source]
        source: InvalidStreamId,
    },
    /// A line's stream version is not the one after the stream's previous line.
    #[error("fixture line {line}: stream {stream} continues at version {found}, expected {expected}")]
    OutOfOrder {
        /// The line number.
        line: usize,
        /// The stream.
        stream: StreamId,
        /// The version that should come next.
        expected: StreamVersion,
        /// The version on the line.
        found: StreamVersion,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    stream_id: String,
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    payload: Box<RawValue>,
    recorded_at: DateTime<Utc>,
}

/// The events of the committed fixture [`V1_ORDERS`], in recorded order.
pub fn fixture_events() -> Result<Vec<FixtureEvent>, FixtureError> {
    parse_fixture(V1_ORDERS)
}

/// Parses fixture text: one event per line, blank lines ignored, each stream's versions
/// consecutive from 1. Every event gets a fresh id.
pub fn parse_fixture(text: &str) -> Result<Vec<FixtureEvent>, FixtureError> {
    let mut versions: HashMap<StreamId, StreamVersion> = HashMap::new();
    let mut events = Vec::new();
    for (index, row) in text.lines().enumerate().filter(|(_, row)| !row.trim().is_empty()) {
        let event = parse_line(index + 1, row)?;
        let expected = versions.get(&event.stream_id).copied().unwrap_or_default().next();
        if event.stream_version != expected {
            let (stream, found) = (event.stream_id, event.stream_version);
            return Err(FixtureError::OutOfOrder { line: index + 1, stream, expected, found });
        }
        versions.insert(event.stream_id.clone(), expected);
        events.push(event);
    }
    Ok(events)
}

fn parse_line(line: usize, text: &str) -> Result<FixtureEvent, FixtureError> {
    let row: Row = serde_json::from_str(text).map_err(|source| FixtureError::Json { line, source })?;
    let stream_id = StreamId::new(row.stream_id).map_err(|source| FixtureError::StreamId { line, source })?;
    let recorded_at = row.recorded_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let metadata = Metadata::new().with_header(RECORDED_AT_HEADER, recorded_at);
    let event = NewEvent::new(row.event_type, row.schema_version, row.payload).with_metadata(metadata);
    let stream_version = StreamVersion(row.stream_version);
    Ok(FixtureEvent { stream_id, stream_version, recorded_at: row.recorded_at, event })
}

//! Headers round-trip, and every missing or invalid header is named in the error.

use async_nats::HeaderMap;
use chrono::{TimeZone, Utc};
use serde_json::value::RawValue;
use tidemark::{EventId, LogPosition, Metadata, RecordedEvent, StreamId, StreamVersion};
use tidemark_nats::*;
use uuid::Uuid;

fn event(metadata: Metadata) -> RecordedEvent {
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: StreamId::new("order-42").expect("stream id"),
        stream_version: StreamVersion(7),
        position: LogPosition::new(981, 12_345),
        event_type: "OrderPlaced".to_owned(),
        schema_version: 3,
        payload: RawValue::from_string("{}".to_owned()).expect("json"),
        metadata,
        recorded_at: Utc.timestamp_micros(1_790_000_000_123_456).single().expect("time"),
    }
}

fn full() -> RecordedEvent {
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::now_v7())
        .with_causation_id(Uuid::now_v7())
        .with_user(" zoë \r\n 100% ")
        .with_tenant("acme");
    event(metadata)
}

#[test]
fn headers_round_trip_with_and_without_optional_parts() {
    for (event, thin) in [(full(), false), (full(), true), (event(Metadata::new()), false)] {
        let headers = EventHeaders::of(&event).with_thin(thin);
        let map = headers.to_header_map();
        assert_eq!(EventHeaders::parse(Some(&map)).expect("parse"), headers);
    }
    let map = EventHeaders::of(&full()).to_header_map();
    let text = |name| map.get(name).map(|v| v.as_str().to_owned()).expect(name);
    assert_eq!(text(HEADER_POSITION), "981/12345");
    assert_eq!(text(HEADER_STREAM_VERSION), "7");
    assert_eq!(text(HEADER_SCHEMA_VERSION), "3");
    assert_eq!(text(HEADER_RECORDED_AT), "2026-09-21T14:13:20.123456Z");
    assert_eq!(text(HEADER_USER), "%20zoë%20%0D%0A%20100%25%20");
    assert!(map.get(HEADER_THIN).is_none());
    let minimal = EventHeaders::of(&event(Metadata::new())).to_header_map();
    for absent in [HEADER_CORRELATION_ID, HEADER_CAUSATION_ID, HEADER_USER, HEADER_TENANT] {
        assert!(minimal.get(absent).is_none(), "{absent}");
    }
}

/// The headers of `full()` with `name` removed.
fn without(name: &str) -> HeaderMap {
    let source = EventHeaders::of(&full()).with_thin(true).to_header_map();
    let mut map = HeaderMap::new();
    for (key, values) in source.iter() {
        if AsRef::<str>::as_ref(key) != name {
            for value in values {
                map.append(key.clone(), value.clone());
            }
        }
    }
    map
}

#[test]
fn each_missing_required_header_is_named() {
    let required = [
        HEADER_MSG_ID,
        HEADER_STREAM_ID,
        HEADER_STREAM_VERSION,
        HEADER_EVENT_TYPE,
        HEADER_SCHEMA_VERSION,
        HEADER_POSITION,
        HEADER_RECORDED_AT,
    ];
    for name in required {
        let err = EventHeaders::parse(Some(&without(name))).expect_err(name);
        assert!(matches!(err, HeaderError::Missing { header } if header == name), "{name}: {err:?}");
    }
    for optional in [HEADER_CORRELATION_ID, HEADER_CAUSATION_ID, HEADER_USER, HEADER_TENANT, HEADER_THIN] {
        assert!(EventHeaders::parse(Some(&without(optional))).is_ok(), "{optional} is optional");
    }
    let err = EventHeaders::parse(None).expect_err("no headers at all");
    assert_eq!(err.header(), HEADER_MSG_ID);
}

#[test]
fn each_invalid_header_is_named() {
    let cases = [
        (HEADER_MSG_ID, "not-a-uuid"),
        (HEADER_STREAM_ID, "order.42"),
        (HEADER_STREAM_VERSION, "0"),
        (HEADER_STREAM_VERSION, "-1"),
        (HEADER_EVENT_TYPE, "Order.Placed"),
        (HEADER_EVENT_TYPE, "Order>"),
        (HEADER_EVENT_TYPE, "a%2Eb"),
        (HEADER_SCHEMA_VERSION, "0"),
        (HEADER_SCHEMA_VERSION, "4294967296"),
        (HEADER_POSITION, "12"),
        (HEADER_POSITION, "a/1"),
        (HEADER_CORRELATION_ID, "x"),
        (HEADER_CAUSATION_ID, "x"),
        (HEADER_RECORDED_AT, "yesterday"),
        (HEADER_USER, "bad%zzescape"),
        (HEADER_TENANT, "%FF"),
        (HEADER_THIN, "yes"),
    ];
    for (name, value) in cases {
        let mut map = without(name);
        map.insert(name, value);
        let err = EventHeaders::parse(Some(&map)).expect_err(name);
        match &err {
            HeaderError::Invalid { header, value: found, .. } => {
                assert_eq!((*header, found.as_str()), (name, value));
                assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
            }
            other => panic!("{name}={value:?}: expected invalid, got {other:?}"),
        }
    }
}

#[test]
fn downcast_copies_round_trip_and_their_headers_must_agree() {
    let event = full();
    let copy = EventHeaders::of(&event).downcast_to(1);
    assert_eq!((copy.schema_version, copy.downcast_of), (1, Some(3)));
    assert_eq!(copy.msg_id(), format!("{}:v1", event.event_id));
    let map = copy.to_header_map();
    let text = |name| map.get(name).map(|v| v.as_str().to_owned()).expect(name);
    assert_eq!((text(HEADER_MSG_ID), text(HEADER_DOWNCAST_OF)), (copy.msg_id(), "3".to_owned()));
    assert_eq!(EventHeaders::parse(Some(&map)).expect("parse"), copy);
    assert_eq!(EventHeaders::of(&event).downcast_to(2).downcast_to(1), copy, "the original version is kept");

    let id = event.event_id;
    let cases = [
        (HEADER_MSG_ID, id.to_string(), HEADER_MSG_ID),
        (HEADER_MSG_ID, format!("{id}:v2"), HEADER_MSG_ID),
        (HEADER_MSG_ID, format!("{id}:v0"), HEADER_MSG_ID),
        (HEADER_MSG_ID, format!("{id}:vx"), HEADER_MSG_ID),
        (HEADER_MSG_ID, format!("{id}:"), HEADER_MSG_ID),
        (HEADER_DOWNCAST_OF, "1".to_owned(), HEADER_DOWNCAST_OF),
        (HEADER_DOWNCAST_OF, "0".to_owned(), HEADER_DOWNCAST_OF),
    ];
    for (name, value, named) in cases {
        let mut bad = map.clone();
        bad.insert(name, value.as_str());
        let err = EventHeaders::parse(Some(&bad)).expect_err(&value);
        assert!(matches!(&err, HeaderError::Invalid { header, .. } if *header == named), "{name}={value}: {err:?}");
    }
    // An event's headers with a copy's message id, or a copy's marker without one.
    let mut event_map = EventHeaders::of(&event).to_header_map();
    event_map.insert(HEADER_MSG_ID, format!("{id}:v3").as_str());
    assert_eq!(EventHeaders::parse(Some(&event_map)).expect_err("suffix").header(), HEADER_MSG_ID);
    let mut marked = EventHeaders::of(&event).to_header_map();
    marked.insert(HEADER_DOWNCAST_OF, "4");
    assert_eq!(EventHeaders::parse(Some(&marked)).expect_err("marker").header(), HEADER_MSG_ID);
}

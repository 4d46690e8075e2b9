//! Adversarial input for the core: arbitrary JSON through the codec and its upcaster
//! chains, arbitrary text as stream ids. Every input gives `Ok` or a typed error, never a
//! panic; valid events survive encode → decode. `PROPTEST_CASES` raises the case count.

use chrono::Utc;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidemark::{
    DomainEvent, Error, EventCodec, EventId, LogPosition, Metadata, NewEvent, RecordedEvent, StreamId, StreamVersion,
    MAX_STREAM_ID_LEN,
};
use tidemark_testkit::arbitrary::{json_string, json_value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Opened {
    owner: String,
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deposited {
    cents: i64,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Closed {}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum AccountEvent {
        Opened(Opened) = ("AccountOpened", 1),
        Deposited(Deposited) = ("MoneyDeposited", 3),
        Closed(Closed) = ("AccountClosed", 1),
    }
}

/// A chain of three kinds of step: a rename (`Created` v1 → `AccountOpened` v1) and two
/// payload transforms that read fields an arbitrary payload may lack or hold in any type.
fn codec() -> EventCodec<AccountEvent> {
    EventCodec::builder()
        .rename("Created", 1, "AccountOpened", 1)
        .upcast("MoneyDeposited", 1, |mut v| {
            // v1 held whole euros in "amount".
            let euros = v.get("amount").and_then(Value::as_i64).ok_or("no integer \"amount\"")?;
            let cents = euros.checked_mul(100).ok_or("amount out of range")?;
            let object = v.as_object_mut().ok_or("not an object")?;
            object.remove("amount");
            object.insert("cents".into(), cents.into());
            Ok(v)
        })
        .upcast("MoneyDeposited", 2, |mut v| {
            // v2 had no note.
            v.as_object_mut().ok_or("not an object")?.entry("note").or_insert(Value::Null);
            Ok(v)
        })
        .build()
        .expect("the upcasters are consistent")
}

fn recorded(event_type: String, schema_version: u32, payload: &Value) -> RecordedEvent {
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: StreamId::new("account-1").expect("valid"),
        stream_version: StreamVersion(1),
        position: LogPosition::new(1, 1),
        event_type,
        schema_version,
        payload: serde_json::value::to_raw_value(payload).expect("JSON values serialise"),
        metadata: Metadata::default(),
        recorded_at: Utc::now(),
    }
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["AccountOpened", "MoneyDeposited", "AccountClosed", "Created"]).prop_map(str::to_owned),
        1 => json_string(),
    ]
}

fn schema_version() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..5, 1 => any::<u32>()]
}

fn account_event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![
        (json_string(), prop::collection::vec(json_string(), 0..4))
            .prop_map(|(owner, tags)| AccountEvent::from(Opened { owner, tags })),
        (any::<i64>(), prop::option::of(json_string()))
            .prop_map(|(cents, note)| AccountEvent::from(Deposited { cents, note })),
        Just(AccountEvent::from(Closed {})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any type, version and payload decodes to a current event or fails with one of the
    /// codec's typed errors, and `covers`/`handles` agree with what decoding did.
    #[test]
    fn arbitrary_payloads_decode_or_fail_typed(name in event_type(), version in schema_version(), payload in json_value()) {
        let codec = codec();
        let event = recorded(name.clone(), version, &payload);
        match codec.decode(&event) {
            Ok(envelope) => {
                prop_assert!(codec.covers(&name, version), "decoded {name} v{version}, which the codec does not cover");
                let current = AccountEvent::TYPES.iter().any(|t| t.name == envelope.event.event_type());
                prop_assert!(current);
            }
            Err(Error::UnknownEventType { event_type, schema_version, .. }) => {
                prop_assert!(!codec.covers(&name, version));
                prop_assert_eq!((event_type.as_str(), schema_version), (name.as_str(), version));
            }
            Err(Error::Undecodable { .. } | Error::Upcast { .. }) => prop_assert!(codec.covers(&name, version)),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
        if !codec.handles(&name) {
            prop_assert!(!codec.covers(&name, version));
        }
    }

    /// The upcaster chain alone (`upcast`) never panics either, and what it returns is
    /// a current type and version.
    #[test]
    fn upcasting_arbitrary_payloads_reaches_a_current_type_or_fails_typed(version in 0u32..5, payload in json_value()) {
        let codec = codec();
        match codec.upcast(&recorded("MoneyDeposited".into(), version, &payload)) {
            Ok(up) => prop_assert_eq!((up.event_type, up.schema_version), ("MoneyDeposited", 3)),
            Err(Error::UnknownEventType { .. }) => prop_assert!(version == 0 || version > 3),
            Err(Error::Upcast { schema_version, .. }) => prop_assert!(schema_version == 1 || schema_version == 2),
            Err(Error::Undecodable { .. }) => prop_assert!(false, "a JSON value is always readable"),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    /// A valid event survives encode → store form → decode unchanged.
    #[test]
    fn valid_events_survive_encode_then_decode(event in account_event()) {
        let new = NewEvent::from_domain(&event, Metadata::new()).expect("encodes");
        let payload: Value = serde_json::from_str(new.payload.get()).expect("encoded payloads are JSON");
        let stored = recorded(new.event_type.clone(), new.schema_version, &payload);
        prop_assert_eq!(codec().decode_event(&stored).expect("decodes"), event);
    }

    /// A v1 deposit read today carries the same amount, in cents.
    #[test]
    fn old_deposits_upcast_exactly(euros in -(i64::MAX / 100)..(i64::MAX / 100)) {
        let stored = recorded("MoneyDeposited".into(), 1, &serde_json::json!({ "amount": euros }));
        let decoded = codec().decode_event(&stored).expect("decodes");
        prop_assert_eq!(decoded, AccountEvent::from(Deposited { cents: euros * 100, note: None }));
    }

    /// Valid stream ids are accepted as they are.
    #[test]
    fn valid_stream_ids_are_accepted(id in "[A-Za-z0-9][A-Za-z0-9_-]{0,127}") {
        let stream = StreamId::new(id.clone()).expect("a valid id");
        prop_assert_eq!(stream.as_str(), id.as_str());
        prop_assert!(!stream.category().is_empty());
        let parsed: StreamId = serde_json::from_value(Value::String(id)).expect("deserialises");
        prop_assert_eq!(parsed, stream);
    }

    /// Any other text is a typed error naming the text; deserialising agrees with `new`.
    #[test]
    fn any_text_is_a_valid_stream_id_or_a_typed_error(id in prop_oneof![json_string(), "[A-Za-z0-9_.* >-]{0,130}", ".{120,140}"]) {
        let valid = !id.is_empty()
            && id.len() <= MAX_STREAM_ID_LEN
            && id.as_bytes()[0].is_ascii_alphanumeric()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        match StreamId::new(id.clone()) {
            Ok(stream) => {
                prop_assert!(valid, "accepted {id:?}");
                prop_assert_eq!(stream.as_str(), id.as_str());
            }
            Err(e) => {
                prop_assert!(!valid, "rejected {id:?}: {e}");
                prop_assert_eq!(&e.id, &id);
            }
        }
        let via_serde = serde_json::from_value::<StreamId>(Value::String(id));
        prop_assert_eq!(via_serde.is_ok(), valid);
    }
}

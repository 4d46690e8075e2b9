//! The event codec: upcaster chains applied on read, renames, registry validation at
//! build time, and typed errors for events that cannot be read.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tidemark::{
    DomainEvent, Error, EventCodec, EventId, LogPosition, Metadata, RecordedEvent, RegistryError, StreamId,
    StreamVersion, Upcast, Upcasters,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deposited {
    cents: i64,
    currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Closed {
    reason: String,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum AccountEvent {
        Deposited(Deposited) = ("MoneyDeposited", 3),
        Closed(Closed) = ("AccountClosed", 1),
    }
}

/// v1 called the amount `amount`; v2 calls it `cents`.
fn deposit_v1_to_v2(mut v: Value) -> Result<Value, String> {
    let object = v.as_object_mut().ok_or("a v1 deposit is an object")?;
    let amount = object.remove("amount").ok_or("a v1 deposit has an amount")?;
    object.insert("cents".into(), amount);
    Ok(v)
}

/// v3 added the currency; everything before was in euros.
fn deposit_v2_to_v3(mut v: Value) -> Result<Value, String> {
    let object = v.as_object_mut().ok_or("a v2 deposit is an object")?;
    if !object.contains_key("cents") {
        return Err("a v2 deposit has cents".into());
    }
    object.insert("currency".into(), "EUR".into());
    Ok(v)
}

/// The full, valid registry: two steps for deposits, two renames.
fn upcasters() -> Upcasters<AccountEvent> {
    EventCodec::<AccountEvent>::builder()
        .upcast("MoneyDeposited", 1, deposit_v1_to_v2)
        .upcast("MoneyDeposited", 2, deposit_v2_to_v3)
        .rename("FundsAdded", 1, "MoneyDeposited", 1)
        .rename("AccountShut", 1, "AccountClosed", 1)
}

fn codec() -> EventCodec<AccountEvent> {
    upcasters().build().expect("the registry is valid")
}

fn recorded(event_type: &str, schema_version: u32, payload: Value, seq: u64) -> RecordedEvent {
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: StreamId::new("account-1").unwrap(),
        stream_version: StreamVersion(seq),
        position: LogPosition::new(1000 + seq, seq),
        event_type: event_type.into(),
        schema_version,
        payload: serde_json::value::to_raw_value(&payload).unwrap(),
        metadata: Metadata::new().with_user("alice"),
        recorded_at: Utc::now(),
    }
}

fn deposited(cents: i64, currency: &str) -> AccountEvent {
    Deposited { cents, currency: currency.into() }.into()
}

#[test]
fn upcaster_chain_v1_v2_v3_is_applied_on_read() {
    let codec = codec();
    let v1 = recorded("MoneyDeposited", 1, json!({ "amount": 5 }), 1);
    let v2 = recorded("MoneyDeposited", 2, json!({ "cents": 7 }), 2);
    let v3 = recorded("MoneyDeposited", 3, json!({ "cents": 9, "currency": "SEK" }), 3);
    assert_eq!(codec.decode_event(&v1).unwrap(), deposited(5, "EUR"));
    assert_eq!(codec.decode_event(&v2).unwrap(), deposited(7, "EUR"));
    assert_eq!(codec.decode_event(&v3).unwrap(), deposited(9, "SEK"));
}

#[test]
fn decode_keeps_the_envelope_of_the_stored_event() {
    let codec = codec();
    let stored = recorded("MoneyDeposited", 1, json!({ "amount": 5 }), 4);
    let envelope = codec.decode(&stored).unwrap();
    assert_eq!(envelope.event_id, stored.event_id);
    assert_eq!(envelope.stream_id, stored.stream_id);
    assert_eq!(envelope.stream_version, StreamVersion(4));
    assert_eq!(envelope.position, stored.position);
    assert_eq!(envelope.metadata, stored.metadata);
    assert_eq!(envelope.recorded_at, stored.recorded_at);
    assert_eq!(envelope.event, deposited(5, "EUR"));
    // The stored payload is never rewritten.
    assert_eq!(stored.payload.get(), r#"{"amount":5}"#);
}

#[test]
fn chain_steps_run_in_version_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (first, second) = (order.clone(), order.clone());
    let codec = EventCodec::<AccountEvent>::builder()
        .upcast("MoneyDeposited", 2, move |v| {
            second.lock().unwrap().push(2);
            deposit_v2_to_v3(v)
        })
        .upcast("MoneyDeposited", 1, move |v| {
            first.lock().unwrap().push(1);
            deposit_v1_to_v2(v)
        })
        .build()
        .unwrap();
    let event = codec.decode_event(&recorded("MoneyDeposited", 1, json!({ "amount": 3 }), 1));
    assert_eq!(event.unwrap(), deposited(3, "EUR"));
    assert_eq!(*order.lock().unwrap(), vec![1, 2]);
}

#[test]
fn upcast_reports_the_current_type_and_version() {
    let codec = codec();
    let up = codec.upcast(&recorded("FundsAdded", 1, json!({ "amount": 2 }), 1)).unwrap();
    let expected =
        Upcast { event_type: "MoneyDeposited", schema_version: 3, payload: json!({ "cents": 2, "currency": "EUR" }) };
    assert_eq!(up, expected);
}

#[test]
fn covers_exactly_current_and_upcastable_versions() {
    let codec = codec();
    for (name, version) in [
        ("MoneyDeposited", 1),
        ("MoneyDeposited", 2),
        ("MoneyDeposited", 3),
        ("FundsAdded", 1),
        ("AccountShut", 1),
        ("AccountClosed", 1),
    ] {
        assert!(codec.covers(name, version), "{name} v{version}");
    }
    for (name, version) in
        [("MoneyDeposited", 0), ("MoneyDeposited", 4), ("FundsAdded", 2), ("AccountClosed", 2), ("Nope", 1)]
    {
        assert!(!codec.covers(name, version), "{name} v{version}");
    }
}

#[test]
fn renamed_types_decode_as_their_new_type() {
    let codec = codec();
    let funds = recorded("FundsAdded", 1, json!({ "amount": 11 }), 1);
    assert_eq!(codec.decode_event(&funds).unwrap(), deposited(11, "EUR"));
    let shut = recorded("AccountShut", 1, json!({ "reason": "moved" }), 2);
    let closed = AccountEvent::from(Closed { reason: "moved".into() });
    assert_eq!(codec.decode_event(&shut).unwrap(), closed);
    assert_eq!(codec.decode_event(&shut).unwrap().event_type(), "AccountClosed");
}

#[test]
fn upcast_to_can_change_type_and_version_at_once() {
    let codec = upcasters()
        .upcast_to("LegacyCredit", 7, "MoneyDeposited", 2, |v| {
            Ok(json!({ "cents": v["value"].as_i64().ok_or("legacy credits carry a value")? * 100 }))
        })
        .build()
        .unwrap();
    let legacy = recorded("LegacyCredit", 7, json!({ "value": 3 }), 1);
    assert_eq!(codec.decode_event(&legacy).unwrap(), deposited(300, "EUR"));
}

#[test]
fn build_fails_on_a_missing_step_below_the_current_version() {
    let result = EventCodec::<AccountEvent>::builder().upcast("MoneyDeposited", 1, deposit_v1_to_v2).build();
    assert_eq!(result.unwrap_err(), RegistryError::MissingStep { event_type: "MoneyDeposited".into(), version: 2 });
}

#[test]
fn build_without_upcasters_fails_for_a_type_past_v1() {
    assert_eq!(
        EventCodec::<AccountEvent>::without_upcasters().unwrap_err(),
        RegistryError::MissingStep { event_type: "MoneyDeposited".into(), version: 1 }
    );
}

#[test]
fn build_fails_on_a_chain_ending_at_a_non_current_version() {
    // The type itself needs no steps (introduced at v3), but a rename lands on v2,
    // from which nothing leads to v3.
    let result = EventCodec::<AccountEvent>::builder()
        .introduced_at("MoneyDeposited", 3)
        .rename("FundsAdded", 1, "MoneyDeposited", 2)
        .build();
    assert_eq!(result.unwrap_err(), RegistryError::MissingStep { event_type: "MoneyDeposited".into(), version: 2 });
}

#[test]
fn build_fails_on_duplicate_upcasters() {
    let result = upcasters().upcast("MoneyDeposited", 1, Ok).build();
    assert_eq!(
        result.unwrap_err(),
        RegistryError::DuplicateUpcaster { event_type: "MoneyDeposited".into(), version: 1 }
    );
    let renamed_twice = upcasters().rename("FundsAdded", 1, "AccountClosed", 1).build();
    assert_eq!(
        renamed_twice.unwrap_err(),
        RegistryError::DuplicateUpcaster { event_type: "FundsAdded".into(), version: 1 }
    );
}

#[test]
fn build_fails_on_an_upcaster_from_the_current_version() {
    let result = upcasters().upcast("MoneyDeposited", 3, Ok).build();
    assert_eq!(
        result.unwrap_err(),
        RegistryError::UpcastFromCurrent { event_type: "MoneyDeposited".into(), version: 3 }
    );
    let rename_current = upcasters().rename("AccountClosed", 1, "MoneyDeposited", 3).build();
    assert_eq!(
        rename_current.unwrap_err(),
        RegistryError::UpcastFromCurrent { event_type: "AccountClosed".into(), version: 1 }
    );
}

#[test]
fn build_fails_on_a_cycle() {
    let result = upcasters().rename("Ping", 1, "Pong", 1).rename("Pong", 1, "Ping", 1).build();
    match result.unwrap_err() {
        RegistryError::Cycle { event_type, version } => {
            assert!(event_type == "Ping" || event_type == "Pong", "{event_type}");
            assert_eq!(version, 1);
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
}

#[test]
fn build_fails_on_a_longer_cycle_through_versions() {
    let result = upcasters().upcast("Loop", 1, Ok).upcast("Loop", 2, Ok).upcast_to("Loop", 3, "Loop", 1, Ok).build();
    assert!(matches!(result.unwrap_err(), RegistryError::Cycle { ref event_type, .. } if event_type == "Loop"));
}

#[test]
fn build_fails_on_a_dead_end() {
    let unknown_target = upcasters().rename("Gone", 1, "Vanished", 1).build();
    assert_eq!(unknown_target.unwrap_err(), RegistryError::DeadEnd { event_type: "Vanished".into(), version: 1 });
    // A step past the current version leads nowhere either.
    let past_current = upcasters().rename("Gone", 1, "MoneyDeposited", 4).build();
    assert_eq!(past_current.unwrap_err(), RegistryError::DeadEnd { event_type: "MoneyDeposited".into(), version: 4 });
}

// The compiler already warns about the second, unreachable name in the generated
// decode match; the registry turns the mistake into an error at start-up.
#[allow(unreachable_patterns)]
mod same_name {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Credited {
        pub cents: i64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Debited {
        pub cents: i64,
    }

    tidemark::domain_events! {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Clash {
            Credited(Credited) = ("Booked", 1),
            Debited(Debited) = ("Booked", 2),
        }
    }

    #[test]
    fn duplicate_event_type_is_reached_only_by_two_variants_sharing_a_name() {
        // The macro wants each payload type once, so the only way to declare a type
        // name twice is two variants with the same literal name.
        assert_eq!(
            EventCodec::<Clash>::without_upcasters().unwrap_err(),
            RegistryError::DuplicateEventType("Booked".into())
        );
        // The account events, with distinct names, never hit it.
        assert!(!matches!(EventCodec::<AccountEvent>::without_upcasters(), Err(RegistryError::DuplicateEventType(_))));
    }
}

#[test]
fn unknown_type_is_reported_with_its_position() {
    let codec = codec();
    let stored = recorded("MoneyTeleported", 1, json!({}), 5);
    match codec.decode(&stored).unwrap_err() {
        Error::UnknownEventType { event_type, schema_version, position } => {
            assert_eq!((event_type.as_str(), schema_version), ("MoneyTeleported", 1));
            assert_eq!(position, stored.position);
        }
        other => panic!("expected an unknown type, got {other:?}"),
    }
}

#[test]
fn unknown_version_of_a_known_type_is_reported_with_its_position() {
    let codec = codec();
    for version in [0, 4, 99] {
        let stored = recorded("MoneyDeposited", version, json!({ "cents": 1 }), 6);
        match codec.decode_event(&stored).unwrap_err() {
            Error::UnknownEventType { event_type, schema_version, position } => {
                assert_eq!((event_type.as_str(), schema_version), ("MoneyDeposited", version));
                assert_eq!(position, stored.position);
            }
            other => panic!("expected an unknown version, got {other:?}"),
        }
        assert!(matches!(codec.upcast(&stored), Err(Error::UnknownEventType { .. })));
    }
}

fn assert_undecodable(error: Error, stored: &RecordedEvent, as_type: &str, as_version: u32) {
    match error {
        Error::Undecodable { stream, stream_version, position, event_type, schema_version, .. } => {
            assert_eq!(stream, stored.stream_id);
            assert_eq!(stream_version, stored.stream_version);
            assert_eq!(position, stored.position);
            assert_eq!((event_type.as_str(), schema_version), (as_type, as_version));
        }
        other => panic!("expected an undecodable payload, got {other:?}"),
    }
}

#[test]
fn malformed_current_payload_is_undecodable_with_its_position_and_type() {
    let stored = recorded("MoneyDeposited", 3, json!({ "cents": "lots", "currency": "EUR" }), 7);
    assert_undecodable(codec().decode(&stored).unwrap_err(), &stored, "MoneyDeposited", 3);
    let missing = recorded("AccountClosed", 1, json!({}), 8);
    assert_undecodable(codec().decode(&missing).unwrap_err(), &missing, "AccountClosed", 1);
}

#[test]
fn malformed_payload_after_upcasting_is_undecodable_as_the_current_type() {
    let stored = recorded("MoneyDeposited", 2, json!({ "cents": [1] }), 9);
    assert_undecodable(codec().decode(&stored).unwrap_err(), &stored, "MoneyDeposited", 3);
}

#[test]
fn failing_upcaster_is_an_upcast_error_naming_the_failing_step() {
    let codec = codec();
    // The first step refuses a payload that is not an object.
    let stored = recorded("MoneyDeposited", 1, json!([1, 2]), 10);
    match codec.decode_event(&stored).unwrap_err() {
        Error::Upcast { event_type, schema_version, position, reason } => {
            assert_eq!((event_type.as_str(), schema_version), ("MoneyDeposited", 1));
            assert_eq!(position, stored.position);
            assert_eq!(reason, "a v1 deposit is an object");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    // The second step refuses a v2 payload without cents.
    let stored = recorded("MoneyDeposited", 2, json!({ "amount": 1 }), 11);
    match codec.decode_event(&stored).unwrap_err() {
        Error::Upcast { event_type, schema_version, position, .. } => {
            assert_eq!((event_type.as_str(), schema_version), ("MoneyDeposited", 2));
            assert_eq!(position, stored.position);
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
}

#[test]
fn failing_upcaster_after_a_rename_names_the_step_that_failed() {
    let stored = recorded("FundsAdded", 1, json!({ "cents": 1 }), 12);
    match codec().decode_event(&stored).unwrap_err() {
        Error::Upcast { event_type, schema_version, .. } => {
            assert_eq!((event_type.as_str(), schema_version), ("MoneyDeposited", 1));
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
}

mod introduced_later {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Noted {
        pub text: String,
    }

    tidemark::domain_events! {
        #[derive(Debug, Clone, PartialEq)]
        pub enum NoteEvent {
            Noted(Noted) = ("NoteAdded", 2),
        }
    }

    #[test]
    fn introduced_at_lets_a_type_start_past_v1_without_steps() {
        assert_eq!(
            EventCodec::<NoteEvent>::without_upcasters().unwrap_err(),
            RegistryError::MissingStep { event_type: "NoteAdded".into(), version: 1 }
        );
        let codec = EventCodec::<NoteEvent>::builder().introduced_at("NoteAdded", 2).build().unwrap();
        let current = recorded("NoteAdded", 2, json!({ "text": "hi" }), 1);
        let expected = NoteEvent::from(Noted { text: "hi".into() });
        assert_eq!(codec.decode_event(&current).unwrap(), expected);
        // There never was a v1, so one in the store is unknown, not silently accepted.
        let v1 = recorded("NoteAdded", 1, json!({ "text": "hi" }), 2);
        assert!(matches!(codec.decode_event(&v1), Err(Error::UnknownEventType { .. })));
    }
}

//! Schema evolution: `OrderPlaced` v1 (decimal prices, no currency) read as v2.

use chrono::Utc;
use example_orders::domain::{
    codec, fixture_events, placed_v1_to_v2, Currency, Line, OrderEvent, OrderPlaced, OrderShipped,
};
use serde_json::{json, value::to_raw_value, Value};
use tidemark::{DomainEvent, Error, EventId, LogPosition, Metadata, NewEvent, RecordedEvent, StreamId, StreamVersion};

fn recorded(event_type: &str, schema_version: u32, payload: &Value) -> RecordedEvent {
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: StreamId::new("order-1").expect("a valid stream id"),
        stream_version: StreamVersion(1),
        position: LogPosition::new(1, 1),
        event_type: event_type.to_owned(),
        schema_version,
        payload: to_raw_value(payload).expect("JSON values serialise"),
        metadata: Metadata::default(),
        recorded_at: Utc::now(),
    }
}

fn v1_placed(prices: &[&str]) -> Value {
    let lines: Vec<_> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"product": format!("p{i}"), "quantity": 2, "price": p}))
        .collect();
    json!({"customer": "ada@example.com", "lines": lines})
}

#[test]
fn v1_prices_become_exact_minor_units_in_euros() {
    let codec = codec().expect("the upcasters are consistent");
    let event = codec.decode_event(&recorded("OrderPlaced", 1, &v1_placed(&["12.50", "0.99", "35", "6.7"])));
    let expected = OrderPlaced {
        customer: "ada@example.com".into(),
        lines: vec![
            Line::new("p0", 2, 1250),
            Line::new("p1", 2, 99),
            Line::new("p2", 2, 3500),
            Line::new("p3", 2, 670),
        ],
        currency: Currency::EUR,
        delivery: None,
    };
    assert_eq!(event.ok(), Some(OrderEvent::Placed(expected)));
}

#[test]
fn v2_is_read_as_it_is() {
    let codec = codec().expect("the upcasters are consistent");
    let placed = OrderPlaced {
        customer: "ada".into(),
        lines: vec![Line::new("tea", 1, 450)],
        currency: Currency::new("USD").expect("USD"),
        delivery: None,
    };
    let event = OrderEvent::from(placed);
    let payload: Value = serde_json::from_str(event.encode().expect("encodes").get()).expect("valid JSON");
    assert_eq!(payload["lines"][0]["unit_price_minor"], 450);
    assert_eq!(event.schema_version(), 2);
    assert_eq!(codec.decode_event(&recorded("OrderPlaced", 2, &payload)).ok(), Some(event));
    let shipped = codec.decode_event(&recorded("OrderShipped", 1, &json!({"tracking": "T"})));
    assert_eq!(shipped.ok(), Some(OrderShipped { tracking: "T".into() }.into()));
}

#[test]
fn a_malformed_price_is_an_upcast_error_naming_the_line() {
    let codec = codec().expect("the upcasters are consistent");
    for price in ["12.505", "-1.00", "12,50", "", "1e2", "twelve"] {
        let error = codec.decode_event(&recorded("OrderPlaced", 1, &v1_placed(&["1.00", price])));
        match error {
            Err(Error::Upcast { event_type, schema_version: 1, reason, .. }) => {
                assert_eq!(event_type, "OrderPlaced");
                assert!(reason.starts_with("line 2: malformed price"), "{price}: {reason}");
            }
            other => panic!("{price}: expected an upcast error, got {other:?}"),
        }
    }
}

#[test]
fn malformed_v1_shapes_are_errors_not_panics() {
    let cases = [
        json!([]),
        json!({"customer": "ada"}),
        json!({"customer": "ada", "lines": {}}),
        json!({"customer": "ada", "lines": [42]}),
        json!({"customer": "ada", "lines": [{"product": "tea", "quantity": 1}]}),
        json!({"customer": "ada", "lines": [{"product": "tea", "quantity": 1, "price": 12.5}]}),
    ];
    for payload in cases {
        assert!(placed_v1_to_v2(payload.clone()).is_err(), "{payload}");
    }
}

#[test]
fn a_v1_currency_is_kept_and_other_fields_pass_through() {
    let upcast = placed_v1_to_v2(
        json!({"customer": "c", "currency": "GBP", "lines": [{"product": "t", "quantity": 1, "price": "1.5"}]}),
    );
    let expected = json!({"customer": "c", "currency": "GBP", "lines": [{"product": "t", "quantity": 1, "unit_price_minor": 150}]});
    assert_eq!(upcast, Ok(expected));
}

#[test]
fn every_fixture_event_decodes() {
    let codec = codec().expect("the upcasters are consistent");
    let events = fixture_events().expect("the committed fixture parses");
    assert_eq!(events.len(), 20);
    let v1_placed = events.iter().filter(|e| e.event.event_type == "OrderPlaced" && e.event.schema_version == 1);
    assert_eq!(v1_placed.count(), 7);
    for fixture in events {
        let NewEvent { event_id, event_type, schema_version, payload, metadata, .. } = fixture.event;
        let recorded = RecordedEvent {
            event_id,
            stream_id: fixture.stream_id,
            stream_version: fixture.stream_version,
            position: LogPosition::new(1, 1),
            event_type,
            schema_version,
            payload,
            metadata,
            recorded_at: fixture.recorded_at,
        };
        if let Err(error) = codec.decode_event(&recorded) {
            panic!("{} v{}: {error}", recorded.stream_id, recorded.stream_version);
        }
    }
}

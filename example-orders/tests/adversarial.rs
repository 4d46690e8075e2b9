//! Adversarial input for the sample app: arbitrary JSON through the `OrderPlaced` v1 → v2
//! upcaster, and arbitrary bodies and header values (`Idempotency-Key`, `If-Match`,
//! `Authorization`) against the router in embedded mode. Every input gives `Ok` or a
//! typed error, every response is a success or a 4xx problem document, never a 5xx or a
//! panic, and no accepted command ends in an internal failure. `PROPTEST_CASES` raises the
//! case counts.

mod support;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use example_orders::app::AppConfig;
use example_orders::domain::{codec, decimal_to_minor, placed_v1_to_v2, OrderEvent};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tidemark::{Error, EventId, LogPosition, Metadata, RecordedEvent, StreamId, StreamVersion};
use tidemark_testkit::arbitrary::{json_string, json_text, json_value};
use tower::ServiceExt;

use support::{outcome, place, start, token};

fn recorded(schema_version: u32, payload: &Value) -> RecordedEvent {
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: StreamId::new("order-1").expect("valid"),
        stream_version: StreamVersion(1),
        position: LogPosition::new(1, 1),
        event_type: "OrderPlaced".into(),
        schema_version,
        payload: serde_json::value::to_raw_value(payload).expect("JSON values serialise"),
        metadata: Metadata::default(),
        recorded_at: Utc::now(),
    }
}

/// A v1 payload: usually the right shape, with arbitrary prices and extra noise.
fn v1_payload() -> impl Strategy<Value = Value> {
    let price = prop_oneof![
        json_string().prop_map(Value::String),
        "[0-9]{1,20}(\\.[0-9]{0,3})?".prop_map(Value::String),
        json_value()
    ];
    let line = (json_string(), any::<u32>(), price)
        .prop_map(|(product, quantity, price)| json!({ "product": product, "quantity": quantity, "price": price }));
    prop_oneof![
        3 => (json_string(), prop::collection::vec(line, 0..4)).prop_map(|(c, lines)| json!({ "customer": c, "lines": lines })),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The upcaster returns a payload or a reason for any JSON; where it succeeds, every
    /// line's price became exactly `decimal_to_minor(price, 2)` and the currency is set.
    #[test]
    fn the_v1_upcaster_takes_any_json(payload in v1_payload()) {
        match placed_v1_to_v2(payload.clone()) {
            Ok(v2) => {
                prop_assert!(v2.get("currency").is_some());
                let before = payload["lines"].as_array().expect("succeeded on lines");
                for (old, new) in before.iter().zip(v2["lines"].as_array().expect("lines kept")) {
                    let text = old["price"].as_str().expect("a decimal string");
                    prop_assert_eq!(new["unit_price_minor"].as_i64(), decimal_to_minor(text, 2).ok());
                    prop_assert!(new.get("price").is_none());
                }
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    /// Decoding any stored `OrderPlaced` (v1 through the upcaster, v2 as is, any other
    /// version) gives an event or one of the codec's typed errors.
    #[test]
    fn decoding_any_order_placed_gives_an_event_or_a_typed_error(version in 0u32..4, payload in v1_payload()) {
        let codec = codec().expect("the upcasters are consistent");
        match codec.decode_event(&recorded(version, &payload)) {
            Ok(event) => prop_assert!(matches!(event, OrderEvent::Placed(_))),
            Err(Error::Upcast { schema_version: 1, .. }) => prop_assert_eq!(version, 1),
            Err(Error::Undecodable { .. }) => prop_assert!(version == 1 || version == 2),
            Err(Error::UnknownEventType { .. }) => prop_assert!(version == 0 || version == 3),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

/// One request of a case.
#[derive(Debug, Clone)]
struct Call {
    route: usize,
    order: Option<String>,
    body: String,
    idempotency_key: Option<Vec<u8>>,
    if_match: Option<Vec<u8>>,
    authorization: Authorization,
}

#[derive(Debug, Clone)]
enum Authorization {
    Valid,
    Raw(Vec<u8>),
    Bearer(String),
}

/// Method and path of each command and query route; `{id}` is an order id.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/orders"),
    ("GET", "/orders"),
    ("GET", "/orders/{id}"),
    ("POST", "/orders/{id}/lines"),
    ("DELETE", "/orders/{id}/lines/tea"),
    ("POST", "/orders/{id}/confirm"),
    ("POST", "/orders/{id}/pay"),
    ("POST", "/orders/{id}/ship"),
    ("POST", "/orders/{id}/cancel"),
    ("GET", "/commands/{id}"),
    ("POST", "/dev/login"),
];

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_string().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..300),
        "(W/)?\"?[0-9]{0,22}\"?".prop_map(String::into_bytes),
    ]
}

/// A body: arbitrary text, or an order-shaped object with arbitrary values.
fn body() -> impl Strategy<Value = String> {
    let line = (json_value(), json_value(), json_value()).prop_map(
        |(product, quantity, price)| json!({ "product": product, "quantity": quantity, "unit_price_minor": price }),
    );
    let order = (json_value(), prop::collection::vec(line, 0..3))
        .prop_map(|(currency, lines)| json!({ "currency": currency, "lines": lines }).to_string());
    prop_oneof![2 => json_text(), 1 => order, 1 => Just(String::new())]
}

fn call() -> impl Strategy<Value = Call> {
    let authorization = prop_oneof![
        4 => Just(Authorization::Valid),
        1 => header_bytes().prop_map(Authorization::Raw),
        1 => json_string().prop_map(Authorization::Bearer),
    ];
    let order = prop_oneof![Just(None), "[0-9a-f-]{0,40}".prop_map(Some), json_string().prop_map(Some)];
    (0..ROUTES.len(), order, body(), prop::option::of(header_bytes()), prop::option::of(header_bytes()), authorization)
        .prop_map(|(route, order, body, idempotency_key, if_match, authorization)| Call {
            route,
            order,
            body,
            idempotency_key,
            if_match,
            authorization,
        })
}

/// Sends one call; `Ok(None)` when the generated header values cannot be sent at all.
async fn send(router: &Router, call: &Call, known_order: &str, valid: &str) -> Option<(StatusCode, String, Value)> {
    let (method, template) = ROUTES[call.route];
    let id = call.order.clone().unwrap_or_else(|| known_order.to_owned());
    let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let path = template.replace("{id}", if id.is_empty() { "x" } else { &id });
    let mut request = Request::builder().method(Method::from_bytes(method.as_bytes()).ok()?).uri(path);
    let authorization = match &call.authorization {
        Authorization::Valid => format!("Bearer {valid}").into_bytes(),
        Authorization::Raw(raw) => raw.clone(),
        Authorization::Bearer(token) => format!("Bearer {token}").into_bytes(),
    };
    request = request.header("authorization", HeaderValue::from_bytes(&authorization).ok()?);
    if let Some(key) = &call.idempotency_key {
        request = request.header("idempotency-key", HeaderValue::from_bytes(key).ok()?);
    }
    if let Some(version) = &call.if_match {
        request = request.header("if-match", HeaderValue::from_bytes(version).ok()?);
    }
    let request = request.body(Body::from(call.body.clone())).ok()?;
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Some((parts.status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[test]
fn arbitrary_bodies_and_headers_get_a_success_or_a_4xx_problem() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (app, router) = runtime.block_on(start(AppConfig::default()));
    let ada = token("ada", false);
    let (order, _) = runtime.block_on(place(&router, &ada, "tea"));
    let accepted = std::cell::RefCell::new(Vec::new());
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let result = runner.run(&call(), |call| {
        let Some((status, content_type, body)) = runtime.block_on(send(&router, &call, &order, &ada)) else {
            return Ok(());
        };
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!("{status} for {call:?}: {body}")));
        }
        if status.is_client_error() {
            prop_assert_eq!(content_type.as_str(), "application/problem+json", "{:?}", call);
            prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status.as_u16())));
            prop_assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        if status == StatusCode::ACCEPTED {
            accepted.borrow_mut().push(body["status_url"].as_str().unwrap_or_default().to_owned());
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Accepted commands end in success or a business failure, never an internal one.
    for url in accepted.into_inner().iter().filter(|u| !u.is_empty()) {
        let record = runtime.block_on(outcome(&router, &ada, url));
        let code = record["error"]["code"].as_str();
        assert!(!matches!(code, Some("internal" | "unavailable")), "{url}: {record}");
    }
    runtime.block_on(app.stop());
}

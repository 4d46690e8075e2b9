//! Shared set-up of the app's tests: the embedded mode, tokens, requests through the
//! router, and polling with a deadline.
#![allow(dead_code)]

pub(crate) mod postgres;
pub(crate) mod scrape;

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use example_orders::app::AppConfig;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use example_orders::http::router;
use example_orders::runtime::{start_embedded, EmbeddedOptions, Running};
use http_body_util::BodyExt;
use serde_json::Value;
use tidemark::InMemoryEventStore;
use tidemark_projections::MemoryReadModels;
use tokio::time::Instant;
use tower::ServiceExt;

/// How long any condition in these tests may take to come true.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) type App = Running<InMemoryEventStore, MemoryReadModels>;

/// The embedded app without the fixture, and its router.
pub(crate) async fn start(config: AppConfig) -> (App, Router) {
    start_with(config, false).await
}

pub(crate) async fn start_with(config: AppConfig, import_fixture: bool) -> (App, Router) {
    let mut options = EmbeddedOptions::new(TokenKeys::dev());
    options.config = config;
    options.import_fixture = import_fixture;
    let running = start_embedded(options).await.expect("the app starts");
    let router = router(running.app.clone());
    (running, router)
}

pub(crate) fn token(user: &str, admin: bool) -> String {
    TokenKeys::dev().issue(user, admin, DEFAULT_TOKEN_TTL).expect("token")
}

/// A response, its body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request through the router, with optional token, extra headers and JSON body.
pub(crate) async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router.clone().oneshot(request.body(body).expect("request")).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

pub(crate) fn order_body(product: &str, quantity: u32, price: i64) -> Value {
    serde_json::json!({ "currency": "EUR", "lines": [{ "product": product, "quantity": quantity, "unit_price_minor": price }] })
}

/// Polls a command until it is no longer pending; returns its record.
pub(crate) async fn outcome(router: &Router, token: &str, status_url: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let reply = call(router, Method::GET, status_url, Some(token), &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        if reply.body["status"] != "pending" {
            return reply.body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {status_url}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Places an order and waits for it to succeed; returns its id and the command record.
pub(crate) async fn place(router: &Router, token: &str, product: &str) -> (String, Value) {
    let reply = call(router, Method::POST, "/orders", Some(token), &[], Some(order_body(product, 2, 450))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let record = outcome(router, token, reply.body["status_url"].as_str().expect("status url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    (reply.body["entity_id"].as_str().expect("entity id").to_owned(), record)
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
pub(crate) async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tidemark_testkit::wait_until(what, DEADLINE, condition).await;
}

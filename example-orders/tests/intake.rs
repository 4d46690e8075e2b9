//! Taking a command in (the `CommandRequest` extractor) and deciding it once, on the
//! embedded mode through the router.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use example_orders::app::{App, AppConfig};
use example_orders::domain::{order_stream, Line, OrderCommand};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tidemark::{CommandOptions, EventStore};
use tower::ServiceExt;

use support::postgres::deploy;
use support::{call, order_body, outcome, place, start, token, Reply};

/// A request with a raw body and a content type, through the router.
async fn send(router: &Router, path: &str, token: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let mut request =
        Request::builder().method(Method::POST).uri(path).header("authorization", format!("Bearer {token}"));
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = router.clone().oneshot(request.body(Body::from(body)).expect("request")).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Reply { status: parts.status, headers: parts.headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn problem_type(reply: &Reply) -> (&str, Option<&str>) {
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{reply:?}");
    (reply.body["type"].as_str().unwrap_or_default(), reply.header("idempotent-replayed"))
}

/// Accepts a command on version 1 of an order, moves the order on while the command
/// waits for its append, and checks that the command fails with a conflict instead of
/// being decided again on the moved order.
async fn a_moved_order_fails_the_held_command<S, R>(app: &Arc<App<S, R>>, router: &Router)
where
    S: EventStore + Clone + 'static,
    R: Send + Sync + 'static,
{
    let ada = token("ada", false);
    let (order_id, _) = place(router, &ada, "tea").await;
    let stream = order_stream(order_id.parse().expect("uuid"));
    let path = format!("/orders/{order_id}/lines");
    let line = || Some(json!({ "product": "mug", "quantity": 1, "unit_price_minor": 800 }));

    let held = app.hold_appends().await;
    let accepted = call(router, Method::POST, &path, Some(&ada), &[], line()).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "decided on version 1: {accepted:?}");
    // Another writer moves the order on while the accepted command waits for its append.
    let other = OrderCommand::AddLine { line: Line::new("spoon", 2, 150) };
    app.orders().handle(&stream, &other, &CommandOptions::new()).await.expect("the other writer appends");
    drop(held);

    let record = outcome(router, &ada, accepted.body["status_url"].as_str().expect("url")).await;
    let failure = (record["status"].as_str(), record["error"]["code"].as_str());
    assert_eq!(failure, (Some("failed"), Some("conflict")), "{record}");
    let order = app.orders().load(&stream).await.expect("load");
    assert_eq!(order.version.0, 2, "the conflicting command appended nothing");
    let products: Vec<&str> = order.state.lines().iter().map(|l| l.product.as_str()).collect();
    assert_eq!(products, ["tea", "spoon"], "not decided again on the moved order");

    let again = call(router, Method::POST, &path, Some(&ada), &[], line()).await;
    let record = outcome(router, &ada, again.body["status_url"].as_str().expect("url")).await;
    assert_eq!((record["status"].as_str(), record["version"].as_u64()), (Some("succeeded"), Some(3)), "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_decided_on_one_version_fails_with_a_conflict_when_the_order_moves_before_its_append() {
    let (app, router) = start(AppConfig::default()).await;
    a_moved_order_fails_the_held_command(&app.app, &router).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_too_a_command_decided_on_one_version_fails_when_the_order_moves() {
    let deployed = deploy(false).await;
    a_moved_order_fails_the_held_command(&deployed.running.app, &deployed.router).await;
    deployed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_command_whose_order_did_not_move_appends_what_was_decided() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let held = app.app.hold_appends().await;
    let key = [("idempotency-key", "held-order")];
    let first = call(&router, Method::POST, "/orders", Some(&ada), &key, Some(order_body("tea", 3, 200))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{first:?}");
    let order_id: uuid::Uuid = first.body["entity_id"].as_str().and_then(|id| id.parse().ok()).expect("uuid");
    let stream = order_stream(order_id);
    assert_eq!(app.app.orders().store().stream_version(&stream).await.expect("version").0, 0, "held");
    let pending =
        call(&router, Method::GET, first.body["status_url"].as_str().expect("url"), Some(&ada), &[], None).await;
    assert_eq!(pending.body["status"], "pending", "{pending:?}");
    drop(held);
    let record = outcome(&router, &ada, first.body["status_url"].as_str().expect("url")).await;
    assert_eq!((record["status"].as_str(), record["version"].as_u64()), (Some("succeeded"), Some(1)), "{record}");
    let order = app.app.orders().load(&stream).await.expect("load");
    assert_eq!((order.state.customer(), order.state.lines().len()), ("ada", 1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_answered_by_the_intake_even_when_the_order_has_moved_on() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let (order_id, _) = place(&router, &ada, "tea").await;
    let path = format!("/orders/{order_id}/confirm");
    let key = [("idempotency-key", "confirm-once")];
    let first = call(&router, Method::POST, &path, Some(&ada), &key, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{first:?}");
    let record = outcome(&router, &ada, first.body["status_url"].as_str().expect("url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    // Confirming a confirmed order is refused; its retry is not decided again but replayed.
    let retry = call(&router, Method::POST, &path, Some(&ada), &key, None).await;
    assert_eq!((retry.status, &retry.body), (StatusCode::ACCEPTED, &first.body), "{retry:?}");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let fresh = call(&router, Method::POST, &path, Some(&ada), &[("idempotency-key", "confirm-twice")], None).await;
    assert_eq!((fresh.status, problem_type(&fresh).0), (StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_keys_are_400_and_checked_after_the_token() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let long = "k".repeat(256);
    for key in ["", "   ", "two words", "tab\tinside", long.as_str()] {
        let headers = [("idempotency-key", key)];
        let reply = call(&router, Method::POST, "/orders", Some(&ada), &headers, Some(order_body("tea", 1, 100))).await;
        assert_eq!(
            (reply.status, problem_type(&reply).0),
            (StatusCode::BAD_REQUEST, "/problems/bad-request"),
            "{key:?}"
        );
        let anonymous = call(&router, Method::POST, "/orders", None, &headers, Some(order_body("tea", 1, 100))).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{key:?}: the token comes first");
    }
    let longest = "k".repeat(255);
    let reply = call(
        &router,
        Method::POST,
        "/orders",
        Some(&ada),
        &[("idempotency-key", &longest)],
        Some(order_body("tea", 1, 100)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "255 characters are a key: {reply:?}");
    let keyless = call(&router, Method::POST, "/orders", Some(&ada), &[], Some(order_body("tea", 1, 100))).await;
    assert_eq!(keyless.status, StatusCode::ACCEPTED, "a key is optional: {keyless:?}");
    assert_ne!(keyless.body["entity_id"], reply.body["entity_id"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_on_every_command() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, ops) = (token("ada", false), token("ops", true));
    let (order_id, _) = place(&router, &ada, "tea").await;
    // (path, caller, whether the body has fields to get wrong)
    let paths = [
        ("/orders".to_owned(), &ada, true),
        (format!("/orders/{order_id}/lines"), &ada, true),
        (format!("/orders/{order_id}/confirm"), &ada, false),
        (format!("/orders/{order_id}/pay"), &ada, true),
        (format!("/orders/{order_id}/cancel"), &ada, true),
        (format!("/orders/{order_id}/ship"), &ops, true),
        (format!("/fulfilments/{order_id}/dispatch"), &ops, true),
    ];
    let broken = [&b"{"[..], b"\"text\"", b"null", b"{} {}", b"\xff\xfe"];
    let mistyped = [&b"{\"quantity\": \"many\"}"[..], b"[1, 2]"];
    for (path, who, typed) in &paths {
        let bodies = if *typed { [&broken[..], &mistyped[..]].concat() } else { broken.to_vec() };
        for body in bodies {
            let reply = send(&router, path, who, Some("application/json"), body.to_vec()).await;
            let what = format!("{path} {:?}", String::from_utf8_lossy(body));
            assert_eq!(
                (reply.status, problem_type(&reply).0),
                (StatusCode::BAD_REQUEST, "/problems/bad-request"),
                "{what}: {reply:?}"
            );
        }
    }
    let order = app.app.orders().load(&order_stream(order_id.parse().expect("uuid"))).await.expect("load");
    assert_eq!(order.version.0, 1, "no malformed command reached the order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_must_be_json_or_undeclared_and_at_most_the_limit() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let body = order_body("tea", 1, 100).to_string().into_bytes();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"] {
        let reply = send(&router, "/orders", &ada, Some(content_type), body.clone()).await;
        let expected = (StatusCode::UNSUPPORTED_MEDIA_TYPE, "/problems/unsupported-media-type");
        assert_eq!((reply.status, problem_type(&reply).0), expected, "{content_type}: {reply:?}");
    }
    for content_type in
        [Some("application/json"), Some("Application/JSON; charset=utf-8"), Some("application/vnd.orders+json"), None]
    {
        let reply = send(&router, "/orders", &ada, content_type, body.clone()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{content_type:?}: {reply:?}");
    }
    let (order_id, _) = place(&router, &ada, "mug").await;
    let confirm = send(&router, &format!("/orders/{order_id}/confirm"), &ada, Some("text/plain"), Vec::new()).await;
    assert_eq!(confirm.status, StatusCode::ACCEPTED, "an empty body has no type to check: {confirm:?}");

    let mut huge = br#"{"currency": "EUR", "lines": [], "padding": ""#.to_vec();
    huge.extend(vec![b'x'; 3 * 1024 * 1024]);
    huge.extend(br#""}"#);
    let reply = send(&router, "/orders", &ada, Some("application/json"), huge).await;
    assert_eq!((reply.status, problem_type(&reply).0), (StatusCode::PAYLOAD_TOO_LARGE, "/problems/payload-too-large"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_takes_a_version_in_any_etag_form_and_refuses_anything_else() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let (order_id, _) = place(&router, &ada, "tea").await;
    let path = format!("/orders/{order_id}/lines");
    let line = |product: &str| Some(json!({ "product": product, "quantity": 1, "unit_price_minor": 800 }));
    for bad in ["abc", "\"\"", "-1", "\"1.0\"", "*"] {
        let reply = call(&router, Method::POST, &path, Some(&ada), &[("if-match", bad)], line("mug")).await;
        assert_eq!((reply.status, problem_type(&reply).0), (StatusCode::BAD_REQUEST, "/problems/bad-request"), "{bad}");
    }
    for (version, form, product) in [(1, "\"1\"", "mug"), (2, "W/\"2\"", "spoon"), (3, "3", "pot")] {
        let reply = call(&router, Method::POST, &path, Some(&ada), &[("if-match", form)], line(product)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{form}: {reply:?}");
        let record = outcome(&router, &ada, reply.body["status_url"].as_str().expect("url")).await;
        assert_eq!(record["version"].as_u64(), Some(version + 1), "{form}: {record}");
    }
    let stale = call(&router, Method::POST, &path, Some(&ada), &[("if-match", "\"3\"")], line("cup")).await;
    assert_eq!((stale.status, problem_type(&stale).0), (StatusCode::CONFLICT, "/problems/version-conflict"));
    assert_eq!((stale.body["expected_version"].as_u64(), stale.body["actual_version"].as_u64()), (Some(3), Some(4)));
    app.stop().await;
}

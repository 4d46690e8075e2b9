//! The HTTP API through the router (`tower::ServiceExt::oneshot`), on the embedded mode.

mod support;

use axum::http::{Method, StatusCode};
use example_orders::app::AppConfig;
use example_orders::domain::order_stream;
use serde_json::json;

use support::{call, order_body, outcome, place, start, start_with, token, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_accepted_with_202_then_succeeds_and_reads_back() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let reply = call(&router, Method::POST, "/orders", Some(&ada), &[], Some(order_body("tea", 2, 450))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let status_url = reply.body["status_url"].as_str().expect("status url").to_owned();
    assert_eq!(reply.header("location"), Some(status_url.as_str()));
    assert_eq!(status_url, format!("/commands/{}", reply.body["command_id"].as_str().expect("id")));

    let record = outcome(&router, &ada, &status_url).await;
    assert_eq!((record["status"].as_str(), record["version"].as_u64()), (Some("succeeded"), Some(1)), "{record}");
    let order_id = reply.body["entity_id"].as_str().expect("entity id");
    assert_eq!(record["entity_id"], order_id);

    let path = format!("/orders/{order_id}?version=1&wait_ms=5000");
    let details = call(&router, Method::GET, &path, Some(&ada), &[], None).await;
    assert_eq!(details.status, StatusCode::OK, "{details:?}");
    assert_eq!(details.header("etag"), Some("\"1\""));
    assert_eq!((details.body["status"].as_str(), details.body["customer"].as_str()), (Some("placed"), Some("ada")));
    assert_eq!(details.body["total_minor"], 900);
    let list = call(&router, Method::GET, "/orders", Some(&ada), &[], None).await;
    assert_eq!(list.body.as_array().map(|orders| orders.len()), Some(1), "{list:?}");
    assert_eq!(list.body[0]["order_id"], order_id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_gets_the_first_response_and_places_one_order() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let key = [("idempotency-key", "order-1")];
    let first = call(&router, Method::POST, "/orders", Some(&ada), &key, Some(order_body("tea", 1, 100))).await;
    let again = call(&router, Method::POST, "/orders", Some(&ada), &key, Some(order_body("tea", 1, 100))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!((again.status, &again.body), (StatusCode::ACCEPTED, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("location"), first.header("location"));

    let other = call(&router, Method::POST, "/orders", Some(&ada), &key, Some(order_body("mug", 1, 100))).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{other:?}");
    assert_eq!(other.header("content-type"), Some("application/problem+json"));
    assert_eq!(other.body["type"], "/problems/idempotency-key-reused");

    // Another user's key of the same name is another key.
    let bob = token("bob", false);
    let bobs = call(&router, Method::POST, "/orders", Some(&bob), &key, Some(order_body("mug", 1, 100))).await;
    assert_eq!(bobs.status, StatusCode::ACCEPTED);

    outcome(&router, &ada, first.body["status_url"].as_str().expect("url")).await;
    // The list is a read model: the command's outcome can come before the projection
    // has taken the order in.
    let listed = || async {
        let list = call(&router, Method::GET, "/orders", Some(&ada), &[], None).await;
        list.body.as_array().map_or(0, Vec::len)
    };
    wait_until("ada's order is listed", || async { listed().await > 0 }).await;
    let list = call(&router, Method::GET, "/orders", Some(&ada), &[], None).await;
    assert_eq!(list.body.as_array().map(|orders| orders.len()), Some(1), "one order: {list:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_key_still_places_one_order_because_ids_derive_from_it() {
    let mut config = AppConfig::default();
    config.idempotency_capacity = 1;
    let (app, router) = start(config).await;
    let ada = token("ada", false);
    let body = || Some(order_body("tea", 1, 100));
    let first = call(&router, Method::POST, "/orders", Some(&ada), &[("idempotency-key", "a")], body()).await;
    outcome(&router, &ada, first.body["status_url"].as_str().expect("url")).await;
    // Key "b" pushes "a" out of the in-memory store (as a restart would); "a" comes back, and
    // the event store still knows the command id derived from it: a replay, not a new order.
    call(&router, Method::POST, "/orders", Some(&ada), &[("idempotency-key", "b")], Some(order_body("x", 1, 1))).await;
    let again = call(&router, Method::POST, "/orders", Some(&ada), &[("idempotency-key", "a")], body()).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"), "recognised from the event store");
    assert_eq!(again.body["entity_id"], first.body["entity_id"]);
    let record = outcome(&router, &ada, again.body["status_url"].as_str().expect("url")).await;
    assert_eq!((record["status"].as_str(), record["version"].as_u64()), (Some("succeeded"), Some(1)), "{record}");
    let order_id = first.body["entity_id"].as_str().and_then(|id| id.parse().ok()).expect("uuid");
    let order = app.app.orders().load(&order_stream(order_id)).await.expect("load");
    assert_eq!(order.version.0, 1, "placed once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_a_409_conflict() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let (order_id, _) = place(&router, &ada, "tea").await;
    let confirm = format!("/orders/{order_id}/confirm");
    let stale = call(&router, Method::POST, &confirm, Some(&ada), &[("if-match", "\"0\"")], None).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{stale:?}");
    assert_eq!((stale.body["expected_version"].as_u64(), stale.body["actual_version"].as_u64()), (Some(0), Some(1)));
    assert_eq!(stale.header("content-type"), Some("application/problem+json"));

    let current = call(&router, Method::POST, &confirm, Some(&ada), &[("if-match", "\"1\"")], None).await;
    assert_eq!(current.status, StatusCode::ACCEPTED, "{current:?}");
    let record = outcome(&router, &ada, current.body["status_url"].as_str().expect("url")).await;
    assert_eq!((record["status"].as_str(), record["version"].as_u64()), (Some("succeeded"), Some(2)), "{record}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_commands_are_422_and_malformed_ones_400_as_problems() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = token("ada", false);
    let cases = [
        (json!({ "currency": "eur", "lines": [{ "product": "tea", "quantity": 1, "unit_price_minor": 1 }] }), 422),
        (json!({ "currency": "EUR", "lines": [] }), 422),
        (json!({ "currency": "EUR", "lines": [{ "product": "tea", "quantity": 0, "unit_price_minor": 1 }] }), 422),
        (json!({ "currency": "EUR" }), 400),
        (json!("not an order"), 400),
    ];
    for (body, status) in cases {
        let reply = call(&router, Method::POST, "/orders", Some(&ada), &[], Some(body.clone())).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{body}");
        assert_eq!(reply.body["status"], status, "{body}");
    }
    let (order_id, _) = place(&router, &ada, "tea").await;
    let pay = call(
        &router,
        Method::POST,
        &format!("/orders/{order_id}/pay"),
        Some(&ada),
        &[],
        Some(json!({ "payment_id": "p1", "amount_minor": 900 })),
    )
    .await;
    assert_eq!(pay.status, StatusCode::UNPROCESSABLE_ENTITY, "a placed order cannot be paid: {pay:?}");
    let bad_key = call(&router, Method::POST, "/orders", Some(&ada), &[("idempotency-key", "")], None).await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_and_touch_only_their_own_orders() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, bob) = (token("ada", false), token("bob", false));
    let (order_id, record) = place(&router, &ada, "tea").await;
    let path = format!("/orders/{order_id}");
    let status_url = format!("/commands/{}", record["command_id"].as_str().expect("id"));
    // `place` waited for the command, not for the read model: wait for it here, so that the
    // reads below find the order's document (bob's must still not see it, the admin's must).
    let caught_up = call(&router, Method::GET, &format!("{path}?version=1&wait_ms=10000"), Some(&ada), &[], None).await;
    assert_eq!(caught_up.status, StatusCode::OK, "{caught_up:?}");
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::POST, format!("{path}/confirm")),
        (Method::POST, format!("{path}/cancel")),
        (Method::GET, status_url),
    ] {
        let reply = call(&router, method.clone(), &path, Some(&bob), &[], Some(json!({ "reason": "mine" }))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}: {reply:?}");
    }
    let list = call(&router, Method::GET, "/orders", Some(&bob), &[], None).await;
    assert_eq!(list.body, json!([]));
    let anonymous = call(&router, Method::GET, "/orders", None, &[], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let forged = call(&router, Method::GET, "/orders", Some("eyJzdWIiOiJhZGEifQ.AAAA"), &[], None).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let sales = call(&router, Method::GET, "/sales", Some(&ada), &[], None).await;
    assert_eq!(sales.status, StatusCode::FORBIDDEN);
    let admin = call(&router, Method::GET, &path, Some(&token("ops", true)), &[], None).await;
    assert_eq!(admin.status, StatusCode::OK, "admins read any order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_fulfilled_and_shipped_by_the_process_manager() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, ops) = (token("ada", false), token("ops", true));
    let (order_id, _) = place(&router, &ada, "tea").await;
    let steps = [("confirm", json!({})), ("pay", json!({ "payment_id": "p1", "amount_minor": 900 }))];
    for (step, body) in steps {
        let path = format!("/orders/{order_id}/{step}");
        let reply = call(&router, Method::POST, &path, Some(&ada), &[], Some(body)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{step}: {reply:?}");
        let record = outcome(&router, &ada, reply.body["status_url"].as_str().expect("url")).await;
        assert_eq!(record["status"], "succeeded", "{step}: {record}");
    }
    wait_until("the fulfilment is queued", || async {
        let queue = call(&router, Method::GET, "/fulfilments", Some(&ops), &[], None).await;
        queue.body.as_array().is_some_and(|q| q.iter().any(|f| f["order_id"] == order_id.as_str()))
    })
    .await;
    let path = format!("/fulfilments/{order_id}/dispatch");
    let dispatch = call(&router, Method::POST, &path, Some(&ops), &[], Some(json!({ "tracking": "DHL-1" }))).await;
    assert_eq!(dispatch.status, StatusCode::ACCEPTED, "{dispatch:?}");
    wait_until("the order is shipped", || async {
        let order = call(&router, Method::GET, &format!("/orders/{order_id}"), Some(&ada), &[], None).await;
        order.body["status"] == "shipped" && order.body["tracking"] == "DHL-1"
    })
    .await;
    let sales = call(&router, Method::GET, "/sales?product=tea", Some(&ops), &[], None).await;
    assert_eq!(sales.body.as_array().map(Vec::len), Some(1), "{sales:?}");
    assert_eq!((&sales.body[0]["quantity"], &sales.body[0]["revenue_minor"]["EUR"]), (&json!(2), &json!(900)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_fixture_is_imported_and_its_sales_keep_their_original_days() {
    let (app, router) = start_with(AppConfig::default(), true).await;
    let ops = token("ops", true);
    wait_until("the fixture's sales are projected", || async {
        let sales = call(&router, Method::GET, "/sales", Some(&ops), &[], None).await;
        sales.body.as_array().is_some_and(|days| !days.is_empty())
    })
    .await;
    let sales = call(&router, Method::GET, "/sales", Some(&ops), &[], None).await;
    let days = sales.body.as_array().expect("sales");
    assert!(days.iter().all(|d| d["day"].as_str().is_some_and(|day| day.starts_with("2024-"))), "{days:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mode_fails_commands_with_500_and_spares_reads() {
    let (app, router) = start(AppConfig::default().chaos(1.0)).await;
    let ada = token("ada", false);
    let key = [("idempotency-key", "chaotic")];
    let reply = call(&router, Method::POST, "/orders", Some(&ada), &key, Some(order_body("tea", 1, 100))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
    assert_eq!(reply.body["type"], "/problems/chaos");
    let list = call(&router, Method::GET, "/orders", Some(&ada), &[], None).await;
    assert_eq!(list.status, StatusCode::OK);
    app.stop().await;
}

//! Access across two users and the admin role, through the router: a user can neither
//! read nor command another user's order, nor tell it exists; ops endpoints answer 401
//! without a token and 403 to a user's token; the dev login exists only with dev keys.

mod support;

use axum::http::{Method, StatusCode};
use example_orders::app::AppConfig;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use example_orders::domain::order_stream;
use example_orders::runtime::{start_embedded, EmbeddedOptions};
use serde_json::{json, Value};
use std::time::Duration;

use support::{call, place, start, token};

/// A problem body without the fields that name the request (so two 404s can be compared).
fn problem(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("instance");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_order_looks_exactly_like_no_order_and_cannot_be_changed() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, bob) = (token("ada", false), token("bob", false));
    let (order_id, record) = place(&router, &ada, "tea").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let body = json!({ "reason": "mine", "payment_id": "p", "amount_minor": 900, "product": "mug", "quantity": 1, "unit_price_minor": 1 });
    let requests = |id: &str| {
        [
            (Method::GET, format!("/orders/{id}")),
            (Method::GET, format!("/orders/{id}?version=1&wait_ms=10")),
            (Method::POST, format!("/orders/{id}/lines")),
            (Method::DELETE, format!("/orders/{id}/lines/tea")),
            (Method::POST, format!("/orders/{id}/confirm")),
            (Method::POST, format!("/orders/{id}/pay")),
            (Method::POST, format!("/orders/{id}/cancel")),
        ]
    };
    for ((method, adas), (_, nobodys)) in requests(&order_id).into_iter().zip(requests(&missing)) {
        let theirs = call(&router, method.clone(), &adas, Some(&bob), &[], Some(body.clone())).await;
        let none = call(&router, method.clone(), &nobodys, Some(&bob), &[], Some(body.clone())).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{method} {adas}: {theirs:?}");
        assert_eq!((theirs.status, problem(&theirs.body)), (none.status, problem(&none.body)), "{method} {adas}");
    }
    let status_url = format!("/commands/{}", record["command_id"].as_str().expect("id"));
    let theirs = call(&router, Method::GET, &status_url, Some(&bob), &[], None).await;
    let none = call(&router, Method::GET, &format!("/commands/{missing}"), Some(&bob), &[], None).await;
    assert_eq!((theirs.status, problem(&theirs.body)), (none.status, problem(&none.body)), "a command's status");
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    // Shipping is for admins: the user is refused before the order is looked up.
    let ship_path = format!("/orders/{order_id}/ship");
    let ship = call(&router, Method::POST, &ship_path, Some(&bob), &[], Some(body.clone())).await;
    assert_eq!(ship.status, StatusCode::FORBIDDEN, "{ship:?}");

    // Nothing Bob sent reached Ada's order, and Ada still reads it.
    let order = app.app.orders().load(&order_stream(order_id.parse().expect("uuid"))).await.expect("load");
    assert_eq!(order.version.0, 1, "Bob's commands appended nothing");
    let mine = call(&router, Method::GET, &format!("/orders/{order_id}"), Some(&ada), &[], None).await;
    assert_eq!((mine.status, mine.body["status"].as_str()), (StatusCode::OK, Some("placed")), "{mine:?}");
    let list = call(&router, Method::GET, "/orders", Some(&bob), &[], None).await;
    assert_eq!((list.status, list.body), (StatusCode::OK, json!([])));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_want_a_token_and_the_admin_role() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, ops) = (token("ada", false), token("ops", true));
    let (order_id, _) = place(&router, &ada, "tea").await;
    let expired = TokenKeys::dev().issue("ops", true, Duration::ZERO).expect("token");
    let foreign =
        TokenKeys::new([7u8; 32].to_vec()).expect("keys").issue("ops", true, DEFAULT_TOKEN_TTL).expect("token");
    let endpoints = [
        (Method::GET, "/sales".to_owned(), None),
        (Method::GET, "/fulfilments".to_owned(), None),
        (Method::POST, format!("/fulfilments/{order_id}/dispatch"), Some(json!({ "tracking": "T-1" }))),
        (Method::POST, format!("/orders/{order_id}/ship"), Some(json!({ "tracking": "T-1" }))),
    ];
    for (method, path, body) in endpoints {
        let anonymous = call(&router, method.clone(), &path, None, &[], body.clone()).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path}: {anonymous:?}");
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"), "{method} {path}");
        for (what, bad) in [("expired", &expired), ("signed with another secret", &foreign)] {
            let reply = call(&router, method.clone(), &path, Some(bad), &[], body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} with a token {what}: {reply:?}");
        }
        let user = call(&router, method.clone(), &path, Some(&ada), &[], body.clone()).await;
        assert_eq!(user.status, StatusCode::FORBIDDEN, "{method} {path}: {user:?}");
        let admin = call(&router, method.clone(), &path, Some(&ops), &[], body.clone()).await;
        assert!(
            ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&admin.status),
            "{method} {path} as admin: {admin:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_login_exists_only_with_the_dev_keys() {
    let (app, dev_router) = start(AppConfig::default()).await;
    let login =
        call(&dev_router, Method::POST, "/dev/login", None, &[], Some(json!({ "user": "eve", "admin": true }))).await;
    assert_eq!(login.status, StatusCode::OK, "dev keys: {login:?}");
    app.stop().await;

    let keys = TokenKeys::new(b"a production secret of 32 bytes or more".to_vec()).expect("keys");
    let mut options = EmbeddedOptions::new(keys.clone());
    options.import_fixture = false;
    let running = start_embedded(options).await.expect("starts");
    let router = example_orders::http::router(running.app.clone());
    let login =
        call(&router, Method::POST, "/dev/login", None, &[], Some(json!({ "user": "eve", "admin": true }))).await;
    assert_eq!(login.status, StatusCode::NOT_FOUND, "configured keys: {login:?}");
    let dev_token = token("eve", true);
    let sales = call(&router, Method::GET, "/sales", Some(&dev_token), &[], None).await;
    assert_eq!(sales.status, StatusCode::UNAUTHORIZED, "a token of the published dev secret is refused");
    let admin = keys.issue("ops", true, DEFAULT_TOKEN_TTL).expect("token");
    assert_eq!(call(&router, Method::GET, "/sales", Some(&admin), &[], None).await.status, StatusCode::OK);
    running.stop().await;
}

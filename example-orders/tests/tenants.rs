//! Tenants: a user of one tenant, even an admin, can never read, change, list, or be
//! notified of another tenant's orders (HTTP reads, commands, lists, command outcomes,
//! admin endpoints, WebSocket notices); the events carry the tenant; tokens without a
//! tenant keep working in the default tenant.

mod support;

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use example_orders::app::AppConfig;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use example_orders::domain::order_stream;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tidemark::{EventStore, StreamVersion};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use support::{call, outcome, place, start, token, DEADLINE};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn tenant_token(tenant: &str, user: &str, admin: bool) -> String {
    TokenKeys::dev().issue_in(Some(tenant), user, admin, DEFAULT_TOKEN_TTL).expect("token")
}

/// A problem body without the fields that name the request (so two 404s can be compared).
fn problem(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("instance");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_orders_are_out_of_reach_even_for_its_admin() {
    let (app, router) = start(AppConfig::default()).await;
    let ada = tenant_token("acme", "ada", false);
    let acme_admin = tenant_token("acme", "boss", true);
    let (globex_ada, globex_admin) = (tenant_token("globex", "ada", false), tenant_token("globex", "boss", true));
    let (plain_ada, operator) = (token("ada", false), token("ops", true));

    let (order_id, record) = place(&router, &ada, "tea").await;
    let stream = order_stream(order_id.parse().expect("uuid"));
    let events = app.app.orders().store().read_stream(&stream, StreamVersion(1), 10).await.expect("read");
    assert_eq!(events[0].metadata.tenant.as_deref(), Some("acme"), "the events carry the tenant");
    assert_eq!(events[0].metadata.user.as_deref(), Some("/acme/ada"));
    let waited = call(&router, Method::GET, &format!("/orders/{order_id}?wait_ms=10000"), Some(&ada), &[], None).await;
    assert_eq!(waited.status, StatusCode::OK, "{waited:?}");
    let theirs = call(&router, Method::GET, &format!("/orders/{order_id}"), Some(&acme_admin), &[], None).await;
    assert_eq!(theirs.status, StatusCode::OK, "acme's admin reads acme's orders: {theirs:?}");

    let missing = uuid::Uuid::now_v7().to_string();
    let body = json!({ "reason": "mine", "payment_id": "p", "amount_minor": 900, "product": "mug", "quantity": 1,
        "unit_price_minor": 1, "carrier": "x", "tracking": "y" });
    let requests = |id: &str| {
        [
            (Method::GET, format!("/orders/{id}")),
            (Method::GET, format!("/orders/{id}?version=1&wait_ms=10")),
            (Method::POST, format!("/orders/{id}/lines")),
            (Method::DELETE, format!("/orders/{id}/lines/tea")),
            (Method::POST, format!("/orders/{id}/confirm")),
            (Method::POST, format!("/orders/{id}/pay")),
            (Method::POST, format!("/orders/{id}/cancel")),
            (Method::POST, format!("/orders/{id}/ship")),
            (Method::POST, format!("/fulfilments/{id}/dispatch")),
        ]
    };
    let status_url = format!("/commands/{}", record["command_id"].as_str().expect("command id"));
    let own = call(&router, Method::GET, &status_url, Some(&ada), &[], None).await;
    assert_eq!(own.status, StatusCode::OK, "ada reads her command's outcome: {own:?}");
    for outsider in [&globex_ada, &globex_admin, &plain_ada, &operator] {
        for ((method, acmes), (_, nobodys)) in requests(&order_id).into_iter().zip(requests(&missing)) {
            let theirs = call(&router, method.clone(), &acmes, Some(outsider), &[], Some(body.clone())).await;
            let none = call(&router, method.clone(), &nobodys, Some(outsider), &[], Some(body.clone())).await;
            assert!(
                matches!(theirs.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
                "{method} {acmes}: {theirs:?}"
            );
            assert_eq!((theirs.status, problem(&theirs.body)), (none.status, problem(&none.body)), "{method} {acmes}");
        }
        let outcome = call(&router, Method::GET, &status_url, Some(outsider), &[], None).await;
        assert_eq!(outcome.status, StatusCode::NOT_FOUND, "a command's outcome: {outcome:?}");
        let list = call(&router, Method::GET, "/orders", Some(outsider), &[], None).await;
        assert_eq!((list.status, list.body), (StatusCode::OK, json!([])), "an outsider's list");
    }
    let order = app.app.orders().load(&stream).await.expect("load");
    assert_eq!(order.version.0, 1, "no outsider's command appended anything");

    // The ops endpoints that span every tenant are for the default tenant's admins.
    for path in ["/sales", "/fulfilments"] {
        for admin in [&acme_admin, &globex_admin] {
            let reply = call(&router, Method::GET, path, Some(admin), &[], None).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {reply:?}");
        }
        let reply = call(&router, Method::GET, path, Some(&operator), &[], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
    }
    // Ada's list holds her order; the same name elsewhere lists nothing (checked above).
    let list = call(&router, Method::GET, "/orders", Some(&ada), &[], None).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1), "{list:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_admin_acts_on_its_tenants_orders() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, admin) = (tenant_token("acme", "ada", false), tenant_token("acme", "boss", true));
    let (order_id, _) = place(&router, &ada, "tea").await;
    let cancel = call(
        &router,
        Method::POST,
        &format!("/orders/{order_id}/cancel"),
        Some(&admin),
        &[],
        Some(json!({"reason": "fraud"})),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED, "{cancel:?}");
    let record = outcome(&router, &admin, cancel.body["status_url"].as_str().expect("url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let stream = order_stream(order_id.parse().expect("uuid"));
    let events = app.app.orders().store().read_stream(&stream, StreamVersion(1), 10).await.expect("read");
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.metadata.tenant.as_deref() == Some("acme")), "one tenant per stream");
    app.stop().await;
}

async fn serve() -> (support::App, SocketAddr) {
    let (app, router) = start(AppConfig::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (app, address)
}

async fn open(address: SocketAddr, token: &str) -> Socket {
    let mut request = format!("ws://{address}/ws").into_client_request().expect("request");
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    let (mut socket, _) = connect_async(request).await.expect("websocket");
    assert_eq!(next_json(&mut socket).await["type"], "welcome");
    socket
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next()).await.expect("a message in time");
        match message.expect("socket open").expect("message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads until the change notice of `order_id` arrives; every message before it must be
/// about that order too.
async fn expect_only(socket: &mut Socket, order_id: &str) {
    loop {
        let message = next_json(socket).await;
        let about = message["order_id"].as_str().or(message["entity_id"].as_str());
        assert_eq!(about, Some(order_id), "a notice about someone else's order: {message}");
        if message["type"] == "order_changed" {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_never_cross_tenants() {
    let (app, address) = serve().await;
    let (router, ada) = (example_orders::http::router(app.app.clone()), tenant_token("acme", "ada", false));
    let outsiders = [
        tenant_token("globex", "ada", false),
        tenant_token("globex", "boss", true),
        token("ada", false),
        token("ops", true),
    ];
    let mut ada_socket = open(address, &ada).await;
    let mut sockets = Vec::new();
    for outsider in &outsiders {
        sockets.push(open(address, outsider).await);
    }
    let (acmes, _) = place(&router, &ada, "tea").await;
    expect_only(&mut ada_socket, &acmes).await;
    // Notices go out in log order: had an outsider been told of Ada's order, that notice
    // would come before the one of the outsider's own order, placed after it.
    for (outsider, socket) in outsiders.iter().zip(&mut sockets) {
        let (own, _) = place(&router, outsider, "mug").await;
        expect_only(socket, &own).await;
    }
    app.stop().await;
}

/// Polls until the stream has at least `count` events; returns them.
async fn events_of(app: &support::App, stream: &tidemark::StreamId, count: usize) -> Vec<tidemark::RecordedEvent> {
    let store = app.app.orders().store().clone();
    let found = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = found.clone();
    support::wait_until(&format!("{count} events on {stream}"), || {
        let (store, seen) = (store.clone(), seen.clone());
        let stream = stream.clone();
        async move {
            let events = store.read_stream(&stream, StreamVersion(1), 100).await.expect("read");
            let enough = events.len() >= count;
            *seen.lock().expect("lock") = events;
            enough
        }
    })
    .await;
    let events = found.lock().expect("lock").clone();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_manager_keeps_the_tenant_through_fulfilment_and_shipping() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, admin) = (tenant_token("acme", "ada", false), tenant_token("acme", "boss", true));
    let globex_admin = tenant_token("globex", "boss", true);
    let (order_id, _) = place(&router, &ada, "tea").await;
    for (step, body) in [("confirm", json!({})), ("pay", json!({ "payment_id": "p1", "amount_minor": 900 }))] {
        let reply =
            call(&router, Method::POST, &format!("/orders/{order_id}/{step}"), Some(&ada), &[], Some(body)).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{step}: {reply:?}");
        let record = outcome(&router, &ada, reply.body["status_url"].as_str().expect("url")).await;
        assert_eq!(record["status"], "succeeded", "{step}: {record}");
    }
    let id: uuid::Uuid = order_id.parse().expect("uuid");
    // The process manager's fulfilment belongs to the order's tenant.
    let fulfilment = events_of(&app, &example_orders::domain::fulfilment_stream(id), 1).await;
    assert_eq!(fulfilment[0].metadata.tenant.as_deref(), Some("acme"), "{:?}", fulfilment[0].metadata);

    let path = format!("/fulfilments/{order_id}/dispatch");
    let body = json!({ "tracking": "T-1" });
    let theirs = call(&router, Method::POST, &path, Some(&globex_admin), &[], Some(body.clone())).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "another tenant's admin: {theirs:?}");
    let dispatch = call(&router, Method::POST, &path, Some(&admin), &[], Some(body)).await;
    assert_eq!(dispatch.status, StatusCode::ACCEPTED, "{dispatch:?}");
    let record = outcome(&router, &admin, dispatch.body["status_url"].as_str().expect("url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");

    // The process manager then ships the order, in its tenant.
    let order = events_of(&app, &order_stream(id), 4).await;
    assert_eq!(order.last().map(|e| e.event_type.as_str()), Some("OrderShipped"), "{order:?}");
    assert!(order.iter().all(|e| e.metadata.tenant.as_deref() == Some("acme")), "one tenant per stream");
    app.stop().await;
}

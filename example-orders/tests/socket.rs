//! The app on a real socket: HTTP with a hyper client, notices over WebSockets.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use example_orders::app::AppConfig;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use support::{order_body, start, token, DEADLINE};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn serve() -> (support::App, SocketAddr) {
    let (app, router) = start(AppConfig::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (app, address)
}

/// Posts an order over HTTP; returns the 202 body.
async fn post_order(address: SocketAddr, token: &str, product: &str) -> Value {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{address}/orders"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(order_body(product, 1, 250).to_string())))
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&body).expect("json")
}

/// Opens a socket with the token in the query (as a browser does) or in a header.
async fn open(address: SocketAddr, token: &str, in_query: bool) -> Socket {
    let url = if in_query { format!("ws://{address}/ws?token={token}") } else { format!("ws://{address}/ws") };
    let mut request = url.into_client_request().expect("request");
    if !in_query {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    }
    let (mut socket, _) = connect_async(request).await.expect("websocket");
    let welcome = next_json(&mut socket).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
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

/// Reads until both the command outcome and the change notice of `order_id` arrived;
/// every message must be about that order.
async fn expect_notices(socket: &mut Socket, command_id: &Value, order_id: &Value) -> Value {
    let (mut outcome, mut changed) = (None, false);
    while outcome.is_none() || !changed {
        let message = next_json(socket).await;
        match message["type"].as_str() {
            Some("command") => {
                assert_eq!((&message["command_id"], &message["entity_id"]), (command_id, order_id), "{message}");
                outcome = Some(message);
            }
            Some("order_changed") => {
                assert_eq!(&message["order_id"], order_id, "{message}");
                changed = true;
            }
            _ => panic!("unexpected {message}"),
        }
    }
    outcome.expect("an outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_every_socket_of_their_user_and_no_one_else() {
    let (app, address) = serve().await;
    let (ada, bob) = (token("ada", false), token("bob", false));
    let mut ada_tab = open(address, &ada, true).await;
    let mut ada_phone = open(address, &ada, false).await;
    let mut bob_tab = open(address, &bob, true).await;
    assert_eq!(app.app.hub().sockets("ada"), 2);

    let accepted = post_order(address, &ada, "tea").await;
    for socket in [&mut ada_tab, &mut ada_phone] {
        let outcome = expect_notices(socket, &accepted["command_id"], &accepted["entity_id"]).await;
        assert_eq!((outcome["status"].as_str(), outcome["version"].as_u64()), (Some("succeeded"), Some(1)));
        assert_eq!(outcome["error"], Value::Null);
        assert!(outcome["at"].as_str().is_some(), "{outcome}");
    }
    // Bob's socket got nothing of Ada's: the first messages it sees are about his order.
    let bobs = post_order(address, &bob, "mug").await;
    expect_notices(&mut bob_tab, &bobs["command_id"], &bobs["entity_id"]).await;

    drop(ada_phone);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app.app.hub().sockets("ada") != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the closed socket is unregistered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = post_order(address, &ada, "cup").await;
    expect_notices(&mut ada_tab, &second["command_id"], &second["entity_id"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_without_a_valid_token_is_refused() {
    let (app, address) = serve().await;
    for url in [format!("ws://{address}/ws"), format!("ws://{address}/ws?token=forged.token")] {
        match connect_async(url.as_str()).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{url}"),
            other => panic!("{url}: expected a 401, got {other:?}"),
        }
    }
    app.stop().await;
}

/// Posts a JSON body with a token; returns the status.
async fn post(address: SocketAddr, token: &str, path: String, body: Value) -> StatusCode {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{address}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    client.request(request).await.expect("response").status()
}

/// Reads `socket` until the order's `event` is announced; every message before it must be
/// about that order.
async fn until_order_event(socket: &mut Socket, order_id: &str, event: &str) {
    loop {
        let message = next_json(socket).await;
        assert!(message.to_string().contains(order_id), "the socket only hears of its user's order: {message}");
        if message["type"] == "order_changed" && message["event"] == event {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_socket_gets_nothing_of_another_users_order_through_its_whole_life() {
    let (app, address) = serve().await;
    let (ada, bob, ops) = (token("ada", false), token("bob", false), token("ops", true));
    let mut ada_tab = open(address, &ada, true).await;
    let mut bob_tab = open(address, &bob, false).await;
    let mut ops_tab = open(address, &ops, true).await;

    // Ada's order is placed, confirmed and paid; Bob tries to cancel it and fails. Every
    // notice goes to Ada's socket.
    let accepted = post_order(address, &ada, "tea").await;
    let order_id = accepted["entity_id"].as_str().expect("id").to_owned();
    expect_notices(&mut ada_tab, &accepted["command_id"], &accepted["entity_id"]).await;
    let cancel = post(address, &bob, format!("/orders/{order_id}/cancel"), serde_json::json!({ "reason": "x" }));
    assert_eq!(cancel.await, StatusCode::NOT_FOUND);
    let confirm = post(address, &ada, format!("/orders/{order_id}/confirm"), serde_json::json!({}));
    assert_eq!(confirm.await, StatusCode::ACCEPTED);
    // A command's events are appended after its 202: the payment is decided on a confirmed
    // order only once the confirmation is in, which Ada's socket tells, as it tells the page.
    until_order_event(&mut ada_tab, &order_id, "OrderConfirmed").await;
    let pay = serde_json::json!({ "payment_id": "p-1", "amount_minor": 250 });
    assert_eq!(post(address, &ada, format!("/orders/{order_id}/pay"), pay).await, StatusCode::ACCEPTED);
    until_order_event(&mut ada_tab, &order_id, "OrderPaid").await;

    // Bob's and the admin's sockets got nothing of it: the first message each sees is
    // about Bob's own order (an admin reads any order, but is notified of none of them).
    let bobs = post_order(address, &bob, "mug").await;
    expect_notices(&mut bob_tab, &bobs["command_id"], &bobs["entity_id"]).await;
    let opses = post_order(address, &ops, "cup").await;
    expect_notices(&mut ops_tab, &opses["command_id"], &opses["entity_id"]).await;
    app.stop().await;
}

//! The app on PostgreSQL alone (`--feed postgres`, `ORDERS_FEED=postgres`): the consumers
//! read the store's log themselves, so no relay runs and NATS is never reached. NATS_URL
//! points at a port where nothing listens: any attempt to use NATS would fail the start.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tidemark_testkit::{free_port, wait_until, Child, TestSchema};
use tokio_tungstenite::tungstenite::Message;

/// `orders args…` on `schema` with the PostgreSQL feed and a NATS_URL nobody answers.
fn command(schema: &TestSchema, dead_nats: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env("DATABASE_URL", schema.url())
        .env("ORDERS_SCHEMA", schema.name())
        .env("ORDERS_FEED", "postgres")
        .env("NATS_URL", dead_nats)
        .env("RUST_LOG", "info")
        .env_remove("ORDERS_TOKEN_SECRET");
    command
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn send(http: &Http, method: &str, url: &str, token: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let mut request = axum::http::Request::builder().method(method).uri(url);
    request = request.header("authorization", format!("Bearer {token}")).header("content-type", "application/json");
    let request = request.body(Full::new(body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())))).ok()?;
    let response = tokio::time::timeout(Duration::from_secs(30), http.request(request)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_runs_on_postgresql_alone_with_the_postgres_feed() {
    let schema = TestSchema::new().await;
    // A port that was free and is held by no NATS server: a listener that never answers
    // the NATS protocol is bound on it for the whole test, so nothing else takes it.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_nats = format!("nats://{}", silent.local_addr().expect("address"));

    let migrated = command(&schema, &dead_nats, &["migrate"]).output().expect("run orders migrate");
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(text(&migrated).contains("no JetStream stream"), "{}", text(&migrated));
    let relay = command(&schema, &dead_nats, &["relay"]).output().expect("run orders relay");
    assert_eq!(relay.status.code(), Some(1), "{}", text(&relay));
    assert!(text(&relay).contains("needs no relay"), "{}", text(&relay));

    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = command(&schema, &dead_nats, &["--no-fixture"]);
    command.env("ORDERS_ADDR", &addr);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("orders.log");
    let mut app = Child::spawn(command, &log).expect("spawn orders");
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    wait_until("the app serves", Duration::from_secs(60), || async {
        send(&http, "GET", &format!("{base}/health"), "", None).await.is_some()
    })
    .await;
    let (ready, report) = send(&http, "GET", &format!("{base}/readyz"), "", None).await.expect("readyz");
    assert_eq!(ready, 200, "ready without NATS: {report}");
    assert!(!report.to_string().to_lowercase().contains("nats"), "no NATS check: {report}");

    // The user's socket, open before the command: the notifier (a consumer on the log)
    // pushes the command's outcome to it.
    let token = TokenKeys::dev().issue("ada", false, DEFAULT_TOKEN_TTL).expect("token");
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}")).await.expect("websocket");
    let body = json!({ "currency": "EUR", "lines": [{ "product": "tea", "quantity": 2, "unit_price_minor": 450 }] });
    let (status, accepted) = send(&http, "POST", &format!("{base}/orders"), &token, Some(body)).await.expect("placed");
    assert_eq!(status, 202, "{accepted}");
    let order = accepted["entity_id"].as_str().expect("order id").to_owned();

    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = socket.next().await {
            if let Message::Text(text) = message.expect("a message") {
                let value: Value = serde_json::from_str(text.as_str()).expect("json");
                if value["type"] == "command" {
                    return value;
                }
            }
        }
        panic!("the socket closed before the outcome");
    })
    .await
    .expect("the outcome pushed in time");
    assert_eq!(outcome["entity_id"].as_str(), Some(order.as_str()), "{outcome}");
    assert_eq!(outcome["command_id"], accepted["command_id"], "{outcome}");

    // The read model, kept by the `orders` projection reading the log.
    let read = format!("{base}/orders/{order}?version=1&wait_ms=20000");
    let (status, view) = send(&http, "GET", &read, &token, None).await.expect("read");
    assert_eq!((status, view["total_minor"].as_i64()), (200, Some(900)), "{view}\n{}", app.log_tail());
    assert!(app.exit_status().is_none(), "still serving");
    let said = std::fs::read_to_string(&log).expect("the log");
    assert!(said.contains("PostgreSQL only (no NATS)"), "{said}");
    app.interrupt().await;
    drop(silent);
}

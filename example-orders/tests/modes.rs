//! The modes of the `orders` binary on PostgreSQL + JetStream: the bare command runs the
//! whole app in one process; a schema migrated part of the way is refused with what is
//! pending; the ops commands' exit codes, and the control commands (`migrate --check`,
//! `relay status|reset`, `projections pause|replay|rebuild --all`) through the binary.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use example_orders::runtime::{PgDeployment, PgOptions, StartError};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tidemark_testkit::{free_port, nats_url, unique_name, wait_until, Child, TestSchema};

struct Target {
    schema: TestSchema,
    stream: String,
    nats: String,
}

impl Target {
    async fn new() -> Self {
        Self { schema: TestSchema::new().await, stream: unique_name("ORDERS"), nats: nats_url().await }
    }

    fn prefix(&self) -> String {
        format!("t.{}", self.stream.to_lowercase())
    }

    fn options(&self) -> PgOptions {
        PgOptions::new(self.schema.url())
            .schema(self.schema.name())
            .nats_url(&self.nats)
            .stream(&self.stream, self.prefix())
            .connections(2, 2)
    }

    /// `orders args…` against this deployment, with no standard input.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
        command
            .args(args)
            .stdin(Stdio::null())
            .env("DATABASE_URL", self.schema.url())
            .env("ORDERS_SCHEMA", self.schema.name())
            .env("NATS_URL", &self.nats)
            .env("ORDERS_JETSTREAM_STREAM", &self.stream)
            .env("ORDERS_SUBJECT_PREFIX", self.prefix())
            .env("RUST_LOG", "info")
            .env_remove("ORDERS_TOKEN_SECRET");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run orders")
    }

    async fn delete_stream(&self) {
        let client = async_nats::connect(&self.nats).await.expect("NATS");
        let _ = async_nats::jetstream::new(client).delete_stream(&self.stream).await;
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[tokio::test]
async fn a_schema_migrated_part_of_the_way_is_refused_with_what_is_pending() {
    let target = Target::new().await;
    let deployment = PgDeployment::connect(target.options()).await.expect("PostgreSQL and NATS");
    let untouched = deployment.check().await;
    assert!(matches!(&untouched, Err(StartError::NotMigrated { pending, .. }) if pending.len() > 4), "{untouched:?}");

    // The store's migrations only: the read models' are what is pending.
    deployment.store.migrate().await.expect("the store's migrations");
    let read_models = deployment.read_models.pending_migrations().await.expect("pending");
    assert!(!read_models.is_empty());
    match deployment.check().await {
        Err(StartError::NotMigrated { schema, pending }) => {
            assert_eq!((schema.as_str(), &pending), (target.schema.name(), &read_models));
        }
        other => panic!("a schema without the read models' tables passed the check: {other:?}"),
    }
    deployment.read_models.migrate().await.expect("the read models' migrations");
    deployment.check().await.expect("fully migrated");

    // One migration forgotten (as after an upgrade that added one): refused, naming it.
    let last: i64 =
        sqlx::query_scalar(&format!("SELECT max(version) FROM \"{}\"._sqlx_migrations", target.schema.name()))
            .fetch_one(deployment.store.pool())
            .await
            .expect("versions");
    sqlx::query(&format!("DELETE FROM \"{}\"._sqlx_migrations WHERE version = $1", target.schema.name()))
        .bind(last)
        .execute(deployment.store.pool())
        .await
        .expect("forget one");
    let error = deployment.check().await.expect_err("one migration pending");
    assert!(matches!(&error, StartError::NotMigrated { pending, .. } if pending == &[last]), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("orders migrate") && message.contains(&last.to_string()), "{message}");

    // The binary says the same and stops, whichever command it is.
    for args in [&["projections", "status"][..], &["relay"], &["serve", "--addr", "127.0.0.1:0"]] {
        let output = target.run(args);
        assert_eq!(output.status.code(), Some(1), "orders {args:?}: {}", text(&output));
        assert!(text(&output).contains("run `orders migrate` first"), "{}", text(&output));
    }
}

#[tokio::test]
async fn ops_commands_exit_with_what_happened() {
    let target = Target::new().await;
    let migrated = target.run(&["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));

    let listed = target.run(&["projections", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let names: Vec<Value> =
        String::from_utf8_lossy(&listed.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(names.iter().any(|n| n["projection"] == "orders"), "{names:?}");

    let missing = target.run(&["stream", "show", "order-00000000-0000-0000-0000-000000000000"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    assert!(text(&missing).contains("has no events"), "{}", text(&missing));

    for args in [&["dlq", "skip", "orders", "order-1"][..], &["projections", "reset", "sales"]] {
        let refused = target.run(args);
        assert_eq!(refused.status.code(), Some(2), "orders {args:?}: {}", text(&refused));
        assert!(text(&refused).contains("refusing without --yes"), "{}", text(&refused));
    }
    let skipped = target.run(&["dlq", "skip", "orders", "order-1", "--yes", "--json"]);
    assert!(skipped.status.success(), "{}", text(&skipped));
    target.delete_stream().await;
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

#[tokio::test]
async fn control_commands_run_through_the_binary() {
    let target = Target::new().await;
    let check = target.run(&["migrate", "--check"]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("pending  store"), "{}", text(&check));
    let sql = target.run(&["migrate", "--print-sql"]);
    assert!(sql.status.success() && text(&sql).contains("CREATE TABLE projection_pauses"), "{}", text(&sql));
    let migrated = target.run(&["migrate", "--json"]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert_eq!(json_lines(&migrated)[0]["schema"].as_str(), Some(target.schema.name()), "{}", text(&migrated));
    let check = target.run(&["migrate", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let status = target.run(&["relay", "status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let relay = &json_lines(&status)[0];
    assert_eq!((relay["leader"].as_str(), relay["checkpoint"].as_str()), (None, Some("0/0")), "{relay}");
    let reset = target.run(&["relay", "reset", "--to", "0/0"]);
    assert_eq!(reset.status.code(), Some(2), "{}", text(&reset));

    let paused = target.run(&["projections", "pause", "sales"]);
    assert!(paused.status.success(), "{}", text(&paused));
    let status = target.run(&["projections", "status", "--json"]);
    let lines = json_lines(&status);
    let sales = lines.iter().find(|l| l["name"] == "sales").expect("sales");
    assert_eq!(sales["paused"], true, "{sales}");
    assert!(lines.iter().filter(|l| l["name"] != "sales").all(|l| l["paused"] == false), "{lines:?}");
    let replayed = target.run(&["projections", "replay", "orders", "--from", "0/0", "--yes", "--json"]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert_eq!(json_lines(&replayed)[0]["applied"], 0, "an empty log: {}", text(&replayed));
    let rebuilt = target.run(&["projections", "rebuild", "--all", "--yes", "--json"]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert_eq!(json_lines(&rebuilt).len(), 6, "every consumer: {}", text(&rebuilt));
    target.delete_stream().await;
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

#[tokio::test]
async fn the_bare_command_runs_the_whole_app_in_one_process() {
    let target = Target::new().await;
    let migrated = target.run(&["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = target.command(&["--no-fixture"]);
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

    // A command and then a read that needs the relay and the `orders` projection: both run
    // in this one process, or the read never sees the order.
    let token = TokenKeys::dev().issue("ada", false, DEFAULT_TOKEN_TTL).expect("token");
    let body = json!({ "currency": "EUR", "lines": [{ "product": "tea", "quantity": 2, "unit_price_minor": 450 }] });
    let (status, accepted) = send(&http, "POST", &format!("{base}/orders"), &token, Some(body)).await.expect("placed");
    assert_eq!(status, 202, "{accepted}");
    let order = accepted["entity_id"].as_str().expect("order id").to_owned();
    let status_url = format!("{base}{}", accepted["status_url"].as_str().expect("status url"));
    wait_until("the command ran", Duration::from_secs(30), || async {
        let record = send(&http, "GET", &status_url, &token, None).await.map(|(_, record)| record);
        record.is_some_and(|r| r["status"] == "succeeded")
    })
    .await;
    let read = format!("{base}/orders/{order}?version=1&wait_ms=20000");
    let (status, view) = send(&http, "GET", &read, &token, None).await.expect("read");
    assert_eq!((status, view["total_minor"].as_i64()), (200, Some(900)), "{view}\n{}", app.log_tail());
    assert!(app.exit_status().is_none(), "still serving");
    let said = std::fs::read_to_string(&log).expect("the log");
    assert!(said.contains("relay and consumers in this process"), "{said}");
    app.interrupt().await;
    target.delete_stream().await;
}

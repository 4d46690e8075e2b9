//! The app as its separate processes (`orders serve`, `orders relay`, two `orders projections
//! run`) on private PostgreSQL and NATS servers, while HTTP clients place, confirm and pay
//! orders and the test kills a random process with SIGKILL again and again. Clients behave as
//! the API asks: they retry with the same `Idempotency-Key` until they learn the outcome.
//! Afterwards every order holds each of its events exactly once, and the read models equal a
//! rebuild from the log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use sqlx::PgPool;
use tidemark_testkit::{free_port, Child, NatsServer, PgCluster};

mod support;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const SCHEMA: &str = "shop";
const ORDERS_PER_CLIENT: usize = 25;
const CLIENTS: usize = 4;
/// How long any single order's journey may take, faults included.
const JOURNEY: Duration = Duration::from_secs(120);

struct Deployment {
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    addr: String,
    processes: Vec<(&'static str, Vec<&'static str>, Option<Child>)>,
}

impl Deployment {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orders"));
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    fn spawn(&mut self, index: usize) {
        let (name, args, _) = &self.processes[index];
        let log = self.dir.path().join(format!("{name}.log"));
        let child = Child::spawn(self.command(args), &log).expect("spawn orders");
        self.processes[index].2 = Some(child);
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.processes[index].2.take() {
            child.kill();
        }
    }

    fn assert_alive(&mut self) {
        for (name, _, child) in &mut self.processes {
            if let Some(child) = child.as_mut() {
                if let Some(status) = child.exit_status() {
                    panic!("{name} exited on its own ({status})\n{}", child.log_tail());
                }
            }
        }
    }

    /// Runs an `orders` command to completion; its output when it succeeds.
    fn run(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("run orders");
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "orders {args:?} failed: {text}");
        text
    }

    fn logs(&self) -> &Path {
        self.dir.path()
    }
}

/// One HTTP exchange; `None` when the app could not be reached or did not answer.
async fn send(
    http: &Http,
    method: &str,
    url: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    send_within(http, method, url, token, key, body, Duration::from_secs(10)).await
}

/// [`send`] with its own time limit.
async fn send_within(
    http: &Http,
    method: &str,
    url: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
    limit: Duration,
) -> Option<(u16, Value)> {
    let mut request =
        axum::http::Request::builder().method(method).uri(url).header("authorization", format!("Bearer {token}"));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(body)).ok()?;
    let response = tokio::time::timeout(limit, http.request(request)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let bytes = tokio::time::timeout(limit, response.into_body().collect()).await.ok()?.ok()?;
    Some((status, serde_json::from_slice(&bytes.to_bytes()).unwrap_or(Value::Null)))
}

/// Sends a command until its outcome is known, as a client should: the same key every time,
/// again after the app forgot it (a restart), pausing briefly while the app is away.
/// Returns the 202's body and the command's record (`succeeded` or `failed`).
async fn command(http: &Http, base: &str, token: &str, path: &str, body: &Value) -> (Value, Value) {
    let key = uuid::Uuid::new_v4().to_string();
    let deadline = tokio::time::Instant::now() + JOURNEY;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no outcome for POST {path} within {JOURNEY:?}");
        let accepted = send(http, "POST", &format!("{base}{path}"), token, Some(&key), Some(body)).await;
        let reply = match accepted {
            Some((202, reply)) => reply,
            // Unreachable, or 503 while a dependency is away: try again.
            None | Some((503, _)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Some(other) => panic!("POST {path} answered {other:?}"),
        };
        let Some(status_url) = reply["status_url"].as_str() else { panic!("202 without a status url: {reply}") };
        // Poll the outcome; if the app restarted and forgot the command, send it again.
        loop {
            match send(http, "GET", &format!("{base}{status_url}"), token, None, None).await {
                Some((200, record)) if record["status"] != "pending" => return (reply, record),
                Some((200, _)) => {}
                Some((404, _)) => break,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Places, confirms and pays one order; returns its id.
async fn journey(http: &Http, base: &str, token: &str, n: usize) -> String {
    let place = json!({ "currency": "EUR", "lines": [{ "product": format!("p-{n}"), "quantity": 2, "unit_price_minor": 450 }] });
    let (accepted, placed) = command(http, base, token, "/orders", &place).await;
    assert_eq!(placed["status"], "succeeded", "{placed}");
    let order = accepted["entity_id"].as_str().unwrap_or_else(|| panic!("no order id in {accepted}")).to_owned();
    let (_, confirmed) = command(http, base, token, &format!("/orders/{order}/confirm"), &json!({})).await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
    let pay = json!({ "payment_id": format!("pay-{n}"), "amount_minor": 900 });
    let (_, paid) = command(http, base, token, &format!("/orders/{order}/pay"), &pay).await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    order
}

/// The documents of a projection's schema, as one ordered text: equal texts, equal models.
async fn digest(pool: &PgPool, projection: &str) -> String {
    let sql = format!(
        "SELECT coalesce(string_agg(collection || '/' || key || '=' || body::text, E'\\n' ORDER BY collection, key), '') \
         FROM \"{SCHEMA}_{projection}\".documents"
    );
    sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("digest of {projection}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_app_relay_and_runners_loses_and_doubles_nothing() {
    let seed: u64 = std::env::var("TIDEMARK_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("app crash test: seed {seed} (replay: TIDEMARK_FAULT_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pg = PgCluster::start().await;
    let nats = NatsServer::start().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let env = vec![
        ("DATABASE_URL", pg.url()),
        ("ORDERS_SCHEMA", SCHEMA.to_owned()),
        ("NATS_URL", nats.url()),
        ("ORDERS_JETSTREAM_STREAM", "SHOP".to_owned()),
        ("ORDERS_SUBJECT_PREFIX", "shop.events".to_owned()),
        ("ORDERS_ADDR", addr.clone()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut dir = tempfile::Builder::new().prefix("tidemark-app-crash-").tempdir().expect("temp dir");
    if std::env::var_os("TIDEMARK_KEEP_LOGS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("process logs in {}", dir.path().display());
    }
    let processes = vec![
        ("serve", vec!["serve", "--no-fixture"], None),
        ("relay", vec!["relay"], None),
        ("runner-0", vec!["projections", "run"], None),
        ("runner-1", vec!["projections", "run"], None),
    ];
    let mut deployment = Deployment { env, dir, addr, processes };
    deployment.run(&["migrate"]);
    for index in 0..deployment.processes.len() {
        deployment.spawn(index);
    }

    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{}", deployment.addr);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (http, base, finished) = (http.clone(), base.clone(), finished.clone());
        let token = support::token(&format!("buyer-{client}"), false);
        clients.spawn(async move {
            let mut orders = Vec::new();
            for n in 0..ORDERS_PER_CLIENT {
                orders.push(journey(&http, &base, &token, client * 100 + n).await);
            }
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (client, orders)
        });
    }
    let mut kills = Vec::new();
    // Kill while every client is still at work.
    while finished.load(std::sync::atomic::Ordering::SeqCst) == 0 && kills.len() < 40 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        deployment.assert_alive();
        let victim = rng.gen_range(0..deployment.processes.len());
        deployment.kill(victim);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        deployment.spawn(victim);
        kills.push(deployment.processes[victim].0);
    }
    let mut orders = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (client, placed) = done.expect("a client finished");
        orders.extend(placed.into_iter().map(|order| (client, order)));
    }
    eprintln!("kills: {kills:?}");
    assert!(!kills.is_empty(), "the clients finished before the first kill");
    assert_eq!(orders.len(), CLIENTS * ORDERS_PER_CLIENT);
    deployment.assert_alive();

    // Each order holds each of its three events once.
    let pool = PgPool::connect(&pg.url()).await.expect("pool");
    let sql = format!(
        "SELECT stream_id, event_type, count(*) FROM {SCHEMA}.events WHERE stream_id LIKE 'order-%' \
         GROUP BY 1, 2 HAVING count(*) > 1"
    );
    let doubled: Vec<(String, String, i64)> = sqlx::query_as(&sql).fetch_all(&pool).await.expect("events");
    assert!(doubled.is_empty(), "events stored twice: {doubled:?}");
    let sql = format!("SELECT count(DISTINCT stream_id) FROM {SCHEMA}.events WHERE stream_id LIKE 'order-%'");
    let streams: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.expect("streams");
    assert_eq!(streams as usize, orders.len(), "one stream per order placed");

    // The orders read model shows every order with its three events, then equals a rebuild.
    for (client, order) in &orders {
        let token = support::token(&format!("buyer-{client}"), false);
        let url = format!("{base}/orders/{order}?version=3&wait_ms=5000");
        let deadline = tokio::time::Instant::now() + JOURNEY;
        loop {
            // 503 (read model lagging) and an unreachable app are worth another try.
            let reply = send(&http, "GET", &url, &token, None, None).await;
            if matches!(&reply, Some((200, view)) if view["version"].as_u64() >= Some(3)) {
                break;
            }
            assert!(matches!(reply, None | Some((503, _))), "{order}: {reply:?}");
            assert!(tokio::time::Instant::now() < deadline, "{order} not at version 3 within {JOURNEY:?}: {reply:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let live = digest(&pool, "orders").await;
    deployment.run(&["projections", "rebuild", "orders", "--yes"]);
    let rebuilt = digest(&pool, "orders").await;
    assert!(
        live == rebuilt,
        "the live orders read model differs from a rebuild (logs in {})",
        deployment.logs().display()
    );
    eprintln!(
        "{} orders, {} kills ({kills:?}): nothing doubled, read model equals a rebuild",
        orders.len(),
        kills.len()
    );
}

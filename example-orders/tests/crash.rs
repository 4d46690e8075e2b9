//! The app as its separate processes (`orders serve --front`, two `orders relay`, two `orders
//! projections run`) on private PostgreSQL and NATS servers, while HTTP clients place, confirm
//! and pay orders and the test kills a random process (a runner half the time) with SIGKILL
//! again and again, tens of times a minute. Clients behave as the API asks: they retry with the
//! same `Idempotency-Key` until they learn the outcome.
//!
//! Throughout, `orders projections status --json` is run as an operator would, and every time
//! it says a projection has taken in everything up to the log head, plain SQL checks that the
//! projection has seen every stored event up to that head. After the clients stop, every
//! projection must hold every stored event within a bound, `projections audit` must find
//! nothing, every order holds each of its events exactly once, and the read models equal a
//! rebuild from the log.
//!
//! The clients (and the kills) go on for `TIDEMARK_APP_CRASH_SECONDS` (20 s by default);
//! `TIDEMARK_FAULT_CATCH_UP_SECS` sets the bound (15 s by default).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
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

    /// A process to kill: a runner half the time, any process otherwise.
    fn victim(&self, rng: &mut rand::rngs::StdRng) -> usize {
        let runners: Vec<usize> =
            (0..self.processes.len()).filter(|i| self.processes[*i].0.starts_with("runner")).collect();
        if rng.gen_bool(0.5) {
            return runners[rng.gen_range(0..runners.len())];
        }
        rng.gen_range(0..self.processes.len())
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One projection's line of `orders projections status --json`.
#[derive(Debug, Clone)]
struct Said {
    name: String,
    lag_events: u64,
    head: Option<(i64, i64)>,
}

/// Runs `orders projections status --json` with `env`; `None` when it failed.
async fn status(env: &[(&'static str, String)]) -> Option<Vec<Said>> {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_orders"));
    cmd.args(["projections", "status", "--json"]).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.env("RUST_LOG", "warn");
    let output = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let lines = text.lines().filter(|l| l.starts_with('{'));
    lines
        .map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            let head = v["log_head"].as_str().and_then(|h| {
                let (t, s) = h.split_once('/')?;
                Some((t.parse().ok()?, s.parse().ok()?))
            });
            Some(Said { name: v["name"].as_str()?.to_owned(), lag_events: v["lag_events"].as_u64()?, head })
        })
        .collect()
}

/// Plain SQL, sharing nothing with the status code but the tables: the stored events up to
/// `head` whose stream `projection` has not seen up to their version.
async fn unseen_through(pool: &PgPool, projection: &str, head: (i64, i64)) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM {SCHEMA}.events e WHERE (e.transaction_id, e.sequence) <= ($1, $2) \
         AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.projection_streams ps \
           WHERE ps.projection = $3 AND ps.stream_id = e.stream_id AND ps.version >= e.stream_version)"
    );
    sqlx::query_scalar(&sql).bind(head.0).bind(head.1).bind(projection).fetch_one(pool).await.expect("unseen events")
}

/// What the status watcher saw.
#[derive(Debug, Default)]
struct Watched {
    runs: u64,
    said_caught_up: u64,
    overclaims: Vec<String>,
}

/// Runs the status over and over until `stop`; checks every "caught up" it prints.
async fn watch_status(env: Vec<(&'static str, String)>, pool: PgPool, stop: Arc<AtomicBool>) -> Watched {
    let mut watched = Watched::default();
    while !stop.load(Ordering::SeqCst) {
        if let Some(lines) = status(&env).await {
            watched.runs += 1;
            for said in lines.iter().filter(|s| s.lag_events == 0) {
                let Some(head) = said.head else { continue };
                watched.said_caught_up += 1;
                let unseen = unseen_through(&pool, &said.name, head).await;
                if unseen > 0 {
                    watched
                        .overclaims
                        .push(format!("{} said caught up at {head:?}; {unseen} events unseen", said.name));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    watched
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
        ("serve", vec!["serve", "--front", "--no-fixture"], None),
        ("relay-0", vec!["relay"], None),
        ("relay-1", vec!["relay"], None),
        ("runner-0", vec!["projections", "run"], None),
        ("runner-1", vec!["projections", "run"], None),
    ];
    let mut deployment = Deployment { env, dir, addr, processes };
    deployment.run(&["migrate"]);
    for index in 0..deployment.processes.len() {
        deployment.spawn(index);
    }
    let pool = PgPool::connect(&pg.url()).await.expect("pool");
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_status(deployment.env.clone(), pool.clone(), stop_watching.clone()));
    let run_for = Duration::from_secs(env_u64("TIDEMARK_APP_CRASH_SECONDS").unwrap_or(20));
    let started = tokio::time::Instant::now();

    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{}", deployment.addr);
    let finished = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (http, base, finished) = (http.clone(), base.clone(), finished.clone());
        let token = support::token(&format!("buyer-{client}"), false);
        clients.spawn(async move {
            let mut orders = Vec::new();
            while started.elapsed() < run_for {
                orders.push(journey(&http, &base, &token, client * 100_000 + orders.len()).await);
            }
            finished.fetch_add(1, Ordering::SeqCst);
            (client, orders)
        });
    }
    let mut kills = Vec::new();
    // Kill while every client is still at work; a killed process is replaced at once.
    while finished.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        deployment.assert_alive();
        let victim = deployment.victim(&mut rng);
        deployment.kill(victim);
        deployment.spawn(victim);
        kills.push(deployment.processes[victim].0);
    }
    let per_minute = kills.len() as f64 * 60.0 / started.elapsed().as_secs_f64();
    let mut orders = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (client, placed) = done.expect("a client finished");
        orders.extend(placed.into_iter().map(|order| (client, order)));
    }
    let stopped = tokio::time::Instant::now();
    let runner_kills = kills.iter().filter(|k| k.starts_with("runner")).count();
    eprintln!("kills ({per_minute:.0} a minute, {runner_kills} of runners): {kills:?}");
    assert!(!kills.is_empty(), "the clients finished before the first kill");
    assert!(orders.len() >= CLIENTS, "every client placed an order");
    deployment.assert_alive();

    // The load has stopped. From the moment the status first says every projection has
    // taken in everything stored, each projection must have seen every stored event (plain
    // SQL); and that moment must come within the bound.
    let last: (i64, i64) = sqlx::query_as(&format!(
        "SELECT transaction_id, sequence FROM {SCHEMA}.events ORDER BY 1 DESC, 2 DESC LIMIT 1"
    ))
    .fetch_one(&pool)
    .await
    .expect("the last event");
    let bound = Duration::from_secs(env_u64("TIDEMARK_FAULT_CATCH_UP_SECS").unwrap_or(15));
    let caught_up = loop {
        let lines = status(&deployment.env).await.unwrap_or_default();
        let all = !lines.is_empty() && lines.iter().all(|s| s.lag_events == 0 && s.head >= Some(last));
        if all {
            for said in &lines {
                let unseen = unseen_through(&pool, &said.name, last).await;
                assert_eq!(unseen, 0, "{} said caught up with {unseen} stored events unseen", said.name);
            }
            break stopped.elapsed();
        }
        assert!(stopped.elapsed() < bound, "the projections did not catch up within {bound:?}: {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop_watching.store(true, Ordering::SeqCst);
    let watched = watcher.await.expect("the status watcher");
    assert!(watched.overclaims.is_empty(), "the status said caught up too early: {:?}", watched.overclaims);
    let names: Vec<String> = status(&deployment.env).await.unwrap_or_default().into_iter().map(|s| s.name).collect();
    for name in &names {
        let audit = deployment.run(&["projections", "audit", name, "--json"]);
        let report: Value = serde_json::from_str(audit.lines().find(|l| l.starts_with('{')).unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("audit of {name}: {e}: {audit}"));
        assert_eq!(
            (report["behind"].as_u64(), report["missing"].as_u64(), report["ahead"].as_u64()),
            (Some(0), Some(0), Some(0)),
            "{report}"
        );
    }
    eprintln!(
        "caught up {} ms after the load stopped; status ran {} times during the run and said caught up {} times, \
         never too early; audit of {} projections clean",
        caught_up.as_millis(),
        watched.runs,
        watched.said_caught_up,
        names.len()
    );

    // Each order holds each of its three events once.
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
        "{} orders, {} kills ({runner_kills} of runners, {per_minute:.0} a minute): nothing doubled, \
         read model equals a rebuild",
        orders.len(),
        kills.len()
    );
}

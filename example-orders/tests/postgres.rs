//! The app on PostgreSQL + JetStream, started in-process through the runtime API: a
//! fresh schema per test (`TestSchema`), a unique JetStream stream and subject prefix.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::Router;
use example_orders::auth::TokenKeys;
use example_orders::cli::Cli;
use example_orders::domain::{fulfilment_codec, import_fixture, OrderEvent};
use example_orders::http::router;
use example_orders::read_models::ORDERS;
use example_orders::seed::{seed, SeedOptions};
use serde_json::{json, Value};
use tidemark::EventCodec;
use tidemark_postgres::PgEventStore;
use tidemark_projections::{DocumentReader, Ops, OpsExit};
use tidemark_projections_postgres::PgReadModels;

use support::postgres::{deploy, Deployed};
use support::{call, outcome, place, token, wait_until, DEADLINE};

/// The first order of the v1 fixture.
const V1_ORDER: &str = "018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a01";

impl Deployed {
    /// Runs an ops command, given as `orders …` arguments, through the mounted ops CLI.
    async fn ops<S: tidemark::EventStore + tidemark::LogDiagnostics>(
        &self,
        ops: &Ops<S>,
        args: &[&str],
    ) -> (OpsExit, String) {
        let cli = Cli::try_parse_from(std::iter::once("orders").chain(args.iter().copied())).expect("parses");
        let command = cli.command.and_then(|c| c.ops()).expect("an ops command");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let exit = ops.run(&command, &mut out, &mut err).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        (exit, text + &String::from_utf8_lossy(&err))
    }
}

/// An order's details after a read-your-writes wait for its current version.
async fn read(router: &Router, who: &str, order_id: &str) -> support::Reply {
    call(router, Method::GET, &format!("/orders/{order_id}?wait_ms=20000"), Some(who), &[], None).await
}

async fn step(router: &Router, who: &str, path: &str, body: Value) {
    let reply = call(router, Method::POST, path, Some(who), &[], Some(body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{path}: {reply:?}");
    let record = outcome(router, who, reply.body["status_url"].as_str().expect("status url")).await;
    assert_eq!(record["status"], "succeeded", "{path}: {record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_flow_through_postgres_and_jetstream_and_read_back_from_postgres() {
    let app = deploy(false).await;
    let (router, ada, ops) = (&app.router, token("ada", false), token("ops", true));
    let (_, mut notices) = app.running.app.hub().register("ada");
    let (order_id, record) = place(router, &ada, "tea").await;
    assert_eq!(record["version"], 1, "{record}");

    let details =
        call(router, Method::GET, &format!("/orders/{order_id}?version=1&wait_ms=20000"), Some(&ada), &[], None).await;
    assert_eq!(details.status, StatusCode::OK, "{details:?}");
    assert_eq!(details.header("etag"), Some("\"1\""));
    assert_eq!((details.body["status"].as_str(), details.body["total_minor"].as_i64()), (Some("placed"), Some(900)));
    let stored = app.running.app.read_models().document(ORDERS, ORDERS, &order_id).await.expect("read");
    assert_eq!(stored.map(|d| d["customer"].clone()), Some(json!("ada")), "the view is a PostgreSQL document");

    let notice = tokio::time::timeout(DEADLINE, async {
        loop {
            let text = notices.recv().await.expect("the socket stays registered");
            if text.contains("order_changed") {
                return text;
            }
        }
    });
    assert!(notice.await.expect("a notice arrives").contains(&order_id), "the notifier consumes JetStream");

    step(router, &ada, &format!("/orders/{order_id}/confirm"), json!({})).await;
    step(router, &ada, &format!("/orders/{order_id}/pay"), json!({ "payment_id": "p-1", "amount_minor": 900 })).await;
    wait_until("the process manager requests the fulfilment", || async {
        let queue = call(router, Method::GET, "/fulfilments", Some(&ops), &[], None).await;
        queue.body.as_array().is_some_and(|q| q.iter().any(|f| f["order_id"] == order_id.as_str()))
    })
    .await;
    step(router, &ops, &format!("/fulfilments/{order_id}/dispatch"), json!({ "tracking": "DHL-7" })).await;
    let shipped =
        call(router, Method::GET, &format!("/orders/{order_id}?version=4&wait_ms=20000"), Some(&ada), &[], None).await;
    assert_eq!((shipped.body["status"].as_str(), shipped.body["tracking"].as_str()), (Some("shipped"), Some("DHL-7")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_fixture_imports_into_postgres_is_upcast_and_passes_events_verify() {
    let app = deploy(true).await;
    let ops = app.running.background.ops().expect("ops");
    // The log is read below the oldest running transaction of the cluster (gap-safe), so
    // the import becomes readable a moment after it commits.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let report = loop {
        let (exit, out) = app.ops(&ops, &["events", "verify", "--json"]).await;
        assert_eq!(exit, OpsExit::Done, "{out}");
        let report: Value = serde_json::from_str(out.lines().next().expect("a report")).expect("json");
        if report["events"].as_u64() >= Some(20) {
            break report;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fixture never became readable: {report}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(report["failed"].as_u64(), Some(0), "{report}");

    // With an upcaster that only renumbers v1 as v2, the same data fails: the check decodes.
    let renumber = EventCodec::<OrderEvent>::builder().upcast("OrderPlaced", 1, Ok).build().expect("codec");
    let bare = Ops::new(app.deployment.store.clone()).codec(renumber).codec(fulfilment_codec().expect("codec"));
    let (exit, out) = app.ops(&bare, &["events", "verify", "--json"]).await;
    let report: Value = serde_json::from_str(out.lines().next().expect("a report")).expect("json");
    assert_eq!((exit, report["failed"].as_u64()), (OpsExit::Problems, Some(7)), "one per v1 OrderPlaced: {out}");

    // Stored as written (v1), read as v2, imported once.
    let (_, shown) = app.ops(&ops, &["stream", "show", &format!("order-{V1_ORDER}"), "--json"]).await;
    let first: Value = serde_json::from_str(shown.lines().next().expect("an event")).expect("json");
    assert_eq!((first["event_type"].as_str(), first["schema_version"].as_u64()), (Some("OrderPlaced"), Some(1)));
    assert_eq!(import_fixture(&app.deployment.store).await.expect("import again"), 0);
    let ada = token("ada@example.com", false);
    let view =
        call(&app.router, Method::GET, &format!("/orders/{V1_ORDER}?wait_ms=20000"), Some(&ada), &[], None).await;
    assert_eq!(view.status, StatusCode::OK, "{view:?}");
    assert_eq!(
        (view.body["currency"].as_str(), view.body["lines"][0]["unit_price_minor"].as_i64()),
        (Some("EUR"), Some(450))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_orders_through_ops_while_serving_keeps_the_read_model_answering() {
    let app = deploy(false).await;
    let router = &app.router;
    let handlers = app.deployment.backend().await.expect("backend").handlers().expect("handlers");
    let mut options = SeedOptions::new(20);
    options.rng_seed = 7;
    let report = seed(&handlers, &options).await.expect("seed");
    assert_eq!(report.journeys.values().sum::<usize>(), 20, "{report}");
    let ada = token("ada", false);
    let (before, _) = place(router, &ada, "tea").await;
    assert_eq!(read(router, &ada, &before).await.status, StatusCode::OK);

    let ops = app.running.background.ops().expect("ops");
    let (exit, out) = app.ops(&ops, &["projections", "rebuild", "orders", "--yes"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    assert!(out.contains("rebuilt orders"), "{out}");
    let again = read(router, &ada, &before).await;
    assert_eq!((again.status, again.body["order_id"].as_str()), (StatusCode::OK, Some(before.as_str())), "{again:?}");
    let (after, _) = place(router, &ada, "mug").await;
    assert_eq!(read(router, &ada, &after).await.status, StatusCode::OK, "the live runner goes on after the swap");
    wait_until("every seeded order is in the rebuilt read model", || async {
        let all = app.running.app.read_models().documents(ORDERS, ORDERS, "", 100).await.expect("list");
        all.len() == 22
    })
    .await;

    let (exit, out) = app.ops(&ops, &["projections", "status", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{out}");
    let orders: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|l: &Value| l["name"] == "orders")
        .expect("orders");
    assert_eq!(orders["built_version"], 1, "{orders}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_is_a_503_with_retry_after() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", tidemark_testkit::free_port());
    let pool = sqlx::postgres::PgPoolOptions::new().acquire_timeout(Duration::from_millis(300)).connect_lazy(&url);
    let store = PgEventStore::from_pool(pool.expect("a lazy pool"), Default::default()).expect("store");
    let backend = example_orders::runtime::Backend {
        read_models: PgReadModels::new(&store),
        feed: tidemark_projections::InProcessBus::new(1).expect("bus"),
        mode: example_orders::runtime::RunMode::InProcess,
        store,
    };
    let running = backend
        .start(TokenKeys::dev(), Default::default(), &example_orders::runtime::Role::Nothing, Default::default())
        .expect("starts without connecting");
    let router = router(running.app.clone());
    let ada = token("ada", false);
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, format!("/orders/{id}")),
        (Method::POST, format!("/orders/{id}/confirm")),
        (Method::GET, "/orders".to_owned()),
    ] {
        let reply = call(&router, method.clone(), &path, Some(&ada), &[], None).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {reply:?}");
        assert_eq!(reply.header("retry-after"), Some("1"), "{method} {path}");
        assert_eq!(reply.body["type"], "/problems/unavailable", "{method} {path}");
    }
    let placed =
        call(&router, Method::POST, "/orders", Some(&ada), &[], Some(support::order_body("tea", 1, 100))).await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "accepted, then it fails: {placed:?}");
    let record = outcome(&router, &ada, placed.body["status_url"].as_str().expect("url")).await;
    assert_eq!(record["error"]["code"], "unavailable", "{record}");
    running.stop().await;
}

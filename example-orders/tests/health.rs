//! `/livez` and `/readyz`: readiness turns false while PostgreSQL or NATS is stopped, or
//! while the process holds nothing it should, and true again once they are back. The
//! servers stopped here are throwaway ones of this test's own.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use example_orders::health::{health_routes, serve_health, Check, Readiness};
use example_orders::runtime::{PgDeployment, PgOptions, Role, Tasks};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tidemark_testkit::{NatsServer, PgCluster};
use tower::ServiceExt as _;

/// How soon readiness must follow a server going away (checks time out after 1 s, results
/// are cached for 1 s).
const NOTICED_WITHIN: Duration = Duration::from_secs(10);
/// How soon it must come back once the server is back (pools and clients reconnect).
const BACK_WITHIN: Duration = Duration::from_secs(40);

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri = format!("http://{addr}{path}").parse().expect("uri");
    let response = client.get(uri).await.expect("GET");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

/// Polls `/readyz` until it answers `ready` (200 or 503) within `bound`; returns the time it
/// took and the last body.
async fn until_ready(addr: SocketAddr, ready: bool, bound: Duration) -> (Duration, Value) {
    let started = Instant::now();
    let want = if ready { 200 } else { 503 };
    loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == want {
            assert_eq!(body["status"], if ready { "ready" } else { "not ready" }, "{body}");
            return (started.elapsed(), body);
        }
        assert!(started.elapsed() < bound, "/readyz still {status} after {bound:?} (want {want}): {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn failed(body: &Value, check: &str) -> String {
    let outcome = body["checks"].as_array().expect("checks").iter().find(|c| c["check"] == check).expect("the check");
    assert_eq!(outcome["ok"], false, "{body}");
    outcome["detail"].as_str().expect("detail").to_owned()
}

async fn deploy(pg: &PgCluster, nats: &NatsServer) -> PgDeployment {
    let options = PgOptions::new(pg.url()).nats_url(nats.url()).connections(4, 4);
    let deployment = PgDeployment::connect(options).await.expect("PostgreSQL and NATS");
    deployment.migrate().await.expect("migrate");
    deployment
}

fn readiness(deployment: &PgDeployment, check: Check) -> Readiness {
    Readiness::deployment(deployment.store.pool().clone(), deployment.client.clone(), [check])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_is_not_ready_while_postgres_or_nats_is_stopped() {
    let (mut pg, mut nats) = tokio::join!(PgCluster::start(), NatsServer::start());
    let deployment = deploy(&pg, &nats).await;
    let mut tasks = Tasks::default();
    let monitor = deployment.spawn_relay(&mut tasks).await.expect("the relay starts");
    let readiness = readiness(&deployment, Check::Relay(monitor));
    let addr = serve_health("127.0.0.1:0".parse().expect("addr"), readiness, tasks.shutdown().clone())
        .await
        .expect("the health endpoint");
    assert_eq!(get(addr, "/livez").await.0, 200);
    let (_, body) = until_ready(addr, true, BACK_WITHIN).await;
    assert!(body.to_string().contains("leading"), "{body}");

    pg.stop().await;
    let (took, body) = until_ready(addr, false, NOTICED_WITHIN).await;
    println!("PostgreSQL stopped: not ready after {took:?}: {body}");
    assert!(failed(&body, "postgres").contains("PostgreSQL"), "{body}");
    assert_eq!(get(addr, "/livez").await.0, 200, "liveness does not depend on the database");
    pg.restart().await;
    let (took, _) = until_ready(addr, true, BACK_WITHIN).await;
    println!("PostgreSQL back: ready after {took:?}");

    nats.stop().await;
    let (took, body) = until_ready(addr, false, NOTICED_WITHIN).await;
    println!("NATS stopped: not ready after {took:?}: {body}");
    assert!(failed(&body, "nats").contains("NATS"), "{body}");
    nats.restart().await;
    let (took, _) = until_ready(addr, true, BACK_WITHIN).await;
    println!("NATS back: ready after {took:?}");
    tasks.join().await.expect("the relay ran until shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_are_ready_once_they_hold_partitions_and_not_while_postgres_is_stopped() {
    let (mut pg, nats) = tokio::join!(PgCluster::start(), NatsServer::start());
    let deployment = deploy(&pg, &nats).await;
    let role = Role::Back { only: None };
    let background = deployment.backend().await.expect("backend").start_consumers(&role, Tasks::default());
    let background = background.expect("the consumers start");
    let readiness = readiness(&deployment, Check::Consumers(background.consumers()));
    let addr = serve_health("127.0.0.1:0".parse().expect("addr"), readiness, background.shutdown().clone())
        .await
        .expect("the health endpoint");
    let (_, body) = until_ready(addr, true, BACK_WITHIN).await;
    assert!(body.to_string().contains("partitions held"), "{body}");

    pg.stop().await;
    let (took, body) = until_ready(addr, false, NOTICED_WITHIN).await;
    println!("PostgreSQL stopped: consumers not ready after {took:?}: {body}");
    failed(&body, "postgres");
    pg.restart().await;
    let (took, _) = until_ready(addr, true, BACK_WITHIN).await;
    println!("PostgreSQL back: consumers ready after {took:?}");
    background.join().await.expect("the consumers ran until shutdown");
}

#[tokio::test]
async fn a_consumer_holding_no_partition_is_not_ready() {
    let statuses: example_orders::runtime::ConsumerStatuses =
        std::sync::Arc::new(|| vec![("orders".to_owned(), tidemark_projections::RunnerStatus::default())]);
    let report = Readiness::new(vec![Check::Consumers(statuses)]).report().await;
    assert!(!report.ready());
    assert!(report.checks[0].detail.contains("holding no partition: orders"), "{report:?}");
}

#[tokio::test]
async fn the_embedded_app_is_live_and_ready_on_its_own_router() {
    let (_app, router) = support::start(example_orders::app::AppConfig::default()).await;
    let app = router.merge(health_routes(Readiness::default()));
    for path in ["/livez", "/health", "/readyz"] {
        let request = axum::http::Request::get(path).body(axum::body::Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), 200, "{path}");
    }
}

//! A running PostgreSQL deployment's `/metrics`, and the metrics table of
//! `docs/operations.md` to compare it with.

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use example_orders::metrics::serve_metrics;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::postgres::{deploy, Deployed};
use super::{call, order_body, outcome, token};

/// A row of the metrics table.
#[derive(Debug, Clone)]
pub(crate) struct Documented {
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    /// Whether it is present once the deployment has handled a command.
    pub with_traffic: bool,
}

/// The text of `docs/<file>`.
pub(crate) fn doc(file: &str) -> String {
    let path = format!("{}/../docs/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metrics table of `docs/operations.md`: its rows whose first cell is a metric name.
pub(crate) fn documented() -> Vec<Documented> {
    let rows = doc("operations.md")
        .lines()
        .filter(|line| line.starts_with("| `tidemark_") || line.starts_with("| `orders_"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            Documented {
                name: cells[0].trim_matches('`').to_owned(),
                kind: cells[1].to_owned(),
                with_traffic: cells[3] == "traffic",
            }
        })
        .collect::<Vec<_>>();
    assert!(rows.len() > 20, "the metrics table of docs/operations.md was not found");
    rows
}

pub(crate) async fn scrape(addr: SocketAddr) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri = format!("http://{addr}/metrics").parse().expect("uri");
    let response = client.get(uri).await.expect("GET /metrics");
    assert!(response.status().is_success());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// The metric names of a scrape, from its `# TYPE` lines, with their types.
pub(crate) fn types(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.trim().to_owned()))
        .collect()
}

/// Installs the recorder (once per test process), deploys the app on PostgreSQL +
/// JetStream with the relay and every consumer, handles one order, and waits until every
/// metric the table marks `traffic` is scraped and the `orders` read model took the order
/// in. Returns the deployment, the metrics address and the scrape.
pub(crate) async fn deployment_with_traffic() -> (Deployed, SocketAddr, String) {
    let addr = serve_metrics("127.0.0.1:0".parse().expect("addr")).await.expect("metrics endpoint");
    let deployed = deploy(false).await;
    let user = token("metrics", false);
    let reply =
        call(&deployed.router, Method::POST, "/orders", Some(&user), &[], Some(order_body("tea", 2, 450))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let record = outcome(&deployed.router, &user, reply.body["status_url"].as_str().expect("status url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let wanted: Vec<String> = documented().into_iter().filter(|m| m.with_traffic).map(|m| m.name).collect();
    let deadline = tokio::time::Instant::now() + super::DEADLINE;
    loop {
        let text = scrape(addr).await;
        let names: Vec<String> = types(&text).into_iter().map(|(name, _)| name).collect();
        let missing: Vec<&String> = wanted.iter().filter(|name| !names.contains(name)).collect();
        if missing.is_empty() && text.contains("tidemark_projection_events_total{projection=\"orders\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not scraped after {:?}: {missing:?}", super::DEADLINE);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let text = scrape(addr).await;
    (deployed, addr, text)
}

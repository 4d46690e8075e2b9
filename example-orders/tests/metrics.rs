//! `--metrics-addr`: the framework's metrics in Prometheus format on `GET /metrics`.

mod support;

use std::net::SocketAddr;

use example_orders::app::AppConfig;
use example_orders::metrics::serve_metrics;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn scrape(addr: SocketAddr) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri = format!("http://{addr}/metrics").parse().expect("uri");
    let response = client.get(uri).await.expect("GET /metrics");
    assert!(response.status().is_success());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_metrics_are_served_in_prometheus_format() {
    let addr = serve_metrics("127.0.0.1:0".parse().expect("addr")).await.expect("metrics endpoint");
    // The embedded app imports the v1 fixture, which its projections then apply.
    let _app = support::start_with(AppConfig::default(), true).await;
    support::wait_until("the projections' counters are scraped", || async move {
        scrape(addr).await.contains("tidemark_projection_events_total{projection=\"orders\"")
    })
    .await;
    let text = scrape(addr).await;
    assert!(text.contains("# TYPE tidemark_projection_events_total counter"), "{text}");
}

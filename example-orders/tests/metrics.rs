//! `--metrics-addr`: the framework's and the app's metrics in Prometheus format on
//! `GET /metrics`, as `docs/operations.md` lists them: each with its `# HELP` and `# TYPE`
//! lines, histograms with buckets.

mod support;

use support::scrape::{deployment_with_traffic, documented, types};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_deployment_exports_every_documented_metric_with_help_and_type() {
    let (deployed, _, text) = deployment_with_traffic().await;
    for metric in documented().into_iter().filter(|m| m.with_traffic) {
        let name = &metric.name;
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP line for {name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} {}\n", metric.kind)), "{name} is not a {}:\n{text}", metric.kind);
        if metric.kind == "histogram" {
            assert!(text.contains(&format!("{name}_bucket{{")), "{name} has no buckets:\n{text}");
        }
    }
    let table: Vec<String> = documented().into_iter().map(|m| m.name).collect();
    for (name, kind) in types(&text) {
        if name.starts_with("tidemark_") || name.starts_with("orders_") {
            assert!(table.contains(&name), "{name} is exported but missing from docs/operations.md");
            assert_ne!(kind, "summary", "{name} is a summary");
        }
    }
    assert!(text.contains("tidemark_projection_events_total{projection=\"orders\""), "{text}");
    assert!(text.contains("orders_http_requests_total{route=\"/orders\",method=\"POST\",status=\"202\"}"), "{text}");
    assert!(text.contains("tidemark_relay_leader 1"), "{text}");
    deployed.stop().await;
}

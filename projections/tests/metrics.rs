//! The relay and the runner report through the `metrics` facade: with a Prometheus
//! recorder installed, their counters, histograms and gauges appear in its output.

mod support;

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tidemark_nats::RelayConfig;

use support::append_rounds;
use support::nats::{spawn_relay, spawn_runner, Bench};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_runner_metrics_reach_a_prometheus_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let runner = bench.runner("metered", bench.feed(Duration::from_secs(30))).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let (stop_runner, runner_task) = spawn_runner(&runner);
    for outcome in append_rounds(&bench.store, 4, 1, 5).await {
        runner.wait_for_append(&outcome, support::DEADLINE).await.expect("caught up");
    }
    let text = handle.render();
    for expected in [
        "tidemark_relay_published_total 20",
        "tidemark_relay_acked_total 20",
        "tidemark_relay_lag_seconds_count 20",
        "tidemark_projection_events_total{projection=\"metered\",outcome=\"applied\"} 16",
        "tidemark_projection_events_total{projection=\"metered\",outcome=\"skipped\"} 4",
        "tidemark_projection_batch_events_count{projection=\"metered\"}",
        "tidemark_projection_lag_seconds{projection=\"metered\",partition=",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

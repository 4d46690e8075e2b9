//! The relay and the runner report through the `metrics` facade: with a Prometheus
//! recorder installed, their counters, histograms and gauges appear in its output. The lag
//! gauges are measured on a timer: they rise while nothing is delivered and fall back to
//! zero once everything is applied.

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use tidemark_nats::RelayConfig;

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{append_rounds, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_runner_metrics_reach_a_prometheus_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let runner = bench.runner("metered", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let outcomes = append_rounds(&bench.store, 4, 1, 5).await;
    // Nothing is published yet: no batch commits, and the gauge must still say how far
    // behind the runner is.
    let lag = |events: u64| format!("tidemark_projection_lag_events{{projection=\"metered\"}} {events}\n");
    wait_until("the lag gauge counts the 20 events nobody delivered", || async { handle.render().contains(&lag(20)) })
        .await;
    assert!(handle.render().contains("tidemark_projection_lag_seconds{projection=\"metered\"}"));
    let (stop_relay, relay_task) = spawn_relay(&relay);
    for outcome in outcomes {
        runner.wait_for_append(&outcome, support::DEADLINE).await.expect("caught up");
    }
    wait_until("the lag gauge is back to zero", || async { handle.render().contains(&lag(0)) }).await;
    let text = handle.render();
    for expected in [
        "tidemark_relay_published_total 20",
        "tidemark_relay_acked_total 20",
        "tidemark_relay_lag_seconds_count 20",
        "tidemark_projection_events_total{projection=\"metered\",outcome=\"applied\"} 16",
        "tidemark_projection_events_total{projection=\"metered\",outcome=\"skipped\"} 4",
        "tidemark_projection_batch_events_count{projection=\"metered\"}",
        "tidemark_projection_apply_latency_seconds_count{projection=\"metered\"}",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

//! Metrics in Prometheus format on an optional address (`--metrics-addr`): the framework
//! and the app report through the `metrics` facade; this installs a Prometheus recorder
//! (histograms with buckets, every metric described) and serves its text on
//! `GET /metrics`. The metrics are listed in `docs/operations.md`.

mod http;
mod sample;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusRecorder};
use tokio::net::TcpListener;

pub use http::{record_http, HTTP_REQUESTS_TOTAL, HTTP_REQUEST_SECONDS};
pub use sample::{
    sample_lag, sample_pools, DEAD_LETTERS, POOL_CONNECTIONS, POOL_IDLE_CONNECTIONS, POOL_MAX_CONNECTIONS,
};

/// Buckets of the histograms in seconds: 1 ms to 30 s.
pub const SECONDS_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Buckets of the histograms that count (messages per batch): 1 to 5 000.
pub const COUNT_BUCKETS: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another recorder is installed already.
    #[error("a metrics recorder is installed already")]
    RecorderInstalled,
    /// The buckets were refused.
    #[error("cannot configure the histogram buckets: {0}")]
    Buckets(#[source] BuildError),
    /// The address could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The Prometheus recorder of the app: every histogram with buckets (seconds, or counts
/// for `tidemark_projection_batch_events`), none as a summary.
pub fn recorder() -> Result<PrometheusRecorder, MetricsError> {
    let builder = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("tidemark_projection_batch_events".into()), &COUNT_BUCKETS)
        })
        .map_err(MetricsError::Buckets)?;
    Ok(builder.build_recorder())
}

/// Gives every metric of the framework and the app its `# HELP` text. Call it after the
/// recorder is installed.
pub fn describe() {
    tidemark::describe_metrics();
    tidemark_postgres::describe_metrics();
    tidemark_nats::describe_metrics();
    tidemark_projections::describe_metrics();
    http::describe();
    sample::describe();
}

/// Installs the global Prometheus recorder and serves `GET /metrics` on `addr` in a
/// background task. Returns the bound address (port 0 picks a free one).
pub async fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
    let recorder = recorder()?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderInstalled)?;
    describe();
    let app = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%bound, "metrics on http://{bound}/metrics");
    Ok(bound)
}

//! Metrics in Prometheus format on an optional address (`--metrics-addr`): the framework
//! reports through the `metrics` facade; this installs a Prometheus recorder and serves its
//! text on `GET /metrics`.

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Another recorder is installed already.
    #[error("a metrics recorder is installed already")]
    RecorderInstalled,
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

/// Installs the global Prometheus recorder and serves `GET /metrics` on `addr` in a
/// background task. Returns the bound address (port 0 picks a free one).
pub async fn serve_metrics(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderInstalled)?;
    let app = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%bound, "metrics on http://{bound}/metrics");
    Ok(bound)
}

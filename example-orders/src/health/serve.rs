//! The health routes, mounted on the app's router or served on an address of their own
//! (`--health-addr`, for `relay` and `projections run`).

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Readiness;

/// Why the health endpoint could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The address could not be bound.
    #[error("cannot listen for health checks on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `GET /livez`, `GET /health` (its alias) and `GET /readyz` over `readiness`.
pub fn health_routes(readiness: Readiness) -> Router {
    let alive = || async { Json(serde_json::json!({ "status": "ok" })) };
    Router::new().route("/livez", get(alive)).route("/health", get(alive)).route(
        "/readyz",
        get(move || {
            let readiness = readiness.clone();
            async move { ready(&readiness).await }
        }),
    )
}

async fn ready(readiness: &Readiness) -> impl IntoResponse {
    let report = readiness.report().await;
    let status = if report.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
}

/// Serves the health routes on `addr` in a background task until `stop`; returns the
/// bound address (port 0 picks a free one).
pub async fn serve_health(
    addr: SocketAddr,
    readiness: Readiness,
    stop: CancellationToken,
) -> Result<SocketAddr, HealthError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| HealthError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| HealthError::Bind { addr, source })?;
    let app = health_routes(readiness);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
            tracing::error!(%error, "the health endpoint stopped");
        }
    });
    tracing::info!(%bound, "health checks on http://{bound}/livez and /readyz");
    Ok(bound)
}

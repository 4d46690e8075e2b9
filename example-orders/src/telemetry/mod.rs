//! Tracing: the HTTP span that starts (or continues) each request's W3C trace, the
//! process's subscriber, and, with the `otel` feature, an OpenTelemetry OTLP exporter.
//!
//! Every request runs with a [`TraceContext`] current: a child of the request's
//! `traceparent` header when it has a valid one, a new trace otherwise. Commands record it
//! in their events' metadata (`traceparent`), the relay copies it into a NATS header, and
//! the process manager's commands continue it.

#[cfg(feature = "otel")]
mod otel;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use tidemark::trace::{relate, Relation, TraceContext, TRACEPARENT, TRACESTATE};
use tracing::Instrument;

/// The default log filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,tidemark_projections=warn,async_nats=warn,sqlx=warn";

/// The middleware (`axum::middleware::from_fn(trace_http)`): an `info` span `http` with the
/// method, route pattern, status and `traceparent`, the request's trace context current
/// while it is handled. An invalid `traceparent` header is ignored (a new trace starts).
pub async fn trace_http(request: Request, next: Next) -> Response {
    let incoming = incoming_context(request.headers());
    let context = incoming.as_ref().map_or_else(TraceContext::new_root, TraceContext::child);
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        route,
        status = tracing::field::Empty,
        traceparent = tracing::field::Empty,
    );
    if let Some(incoming) = &incoming {
        relate(&span, incoming, Relation::Child);
    }
    #[cfg(feature = "otel")]
    let context = match otel::context_of(&span) {
        Some(parent) => TraceContext { parent, state: context.state },
        None => context,
    };
    span.record("traceparent", tracing::field::display(context.parent));
    let response = context.scope(next.run(request)).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    response
}

/// The valid trace context of a request's headers, if any.
pub fn incoming_context(headers: &HeaderMap) -> Option<TraceContext> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::from_headers(text(TRACEPARENT), text(TRACESTATE))
}

/// Why the OpenTelemetry exporter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The exporter could not be built.
    #[error("cannot start the OpenTelemetry exporter: {0}")]
    Exporter(String),
}

/// Keeps the exporter running; dropping it flushes and shuts it down.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<otel::Provider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            otel::shutdown(provider);
        }
    }
}

/// Installs the process's subscriber: log lines on stderr filtered by `RUST_LOG` (else
/// [`DEFAULT_FILTER`]); with the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set,
/// also an OTLP exporter of the spans.
pub fn init() -> Result<TelemetryGuard, TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otel")]
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let (layer, provider) = otel::layer()?;
        registry.with(layer).init();
        return Ok(TelemetryGuard { provider: Some(provider) });
    }
    registry.init();
    Ok(TelemetryGuard::default())
}

//! The OpenTelemetry OTLP exporter (feature `otel`): spans go over OTLP/HTTP (protobuf)
//! to `OTEL_EXPORTER_OTLP_ENDPOINT` (and the other standard `OTEL_*` variables, which
//! the exporter reads itself), and tidemark's stored trace contexts become the parents
//! and links of the exported spans.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tidemark::trace::{Relation, TraceContext, TraceParent};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TelemetryError;

/// The running exporter.
pub(super) type Provider = SdkTracerProvider;

/// The layer exporting spans, and its provider (to shut down on exit). Installs the span
/// hook that relates spans to stored trace contexts.
pub(super) fn layer<S>() -> Result<(impl tracing_subscriber::Layer<S>, Provider), TelemetryError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "orders".to_owned());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("tidemark");
    tidemark::trace::set_span_hook(relate);
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}

/// Flushes and stops the exporter.
pub(super) fn shutdown(provider: Provider) {
    if let Err(error) = provider.shutdown() {
        eprintln!("OpenTelemetry exporter shutdown: {error}");
    }
}

/// The span hook: a child span gets the stored context as its remote parent; a batch span
/// links to it.
fn relate(span: &tracing::Span, context: &TraceContext, relation: Relation) {
    let remote = span_context(context);
    match relation {
        Relation::Child => {
            span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        _ => span.add_link(remote),
    }
}

/// The exported span's own context, as a `traceparent`: what the request's commands record.
pub(super) fn context_of(span: &tracing::Span) -> Option<TraceParent> {
    let context = span.context();
    let own = context.span().span_context().clone();
    own.is_valid().then(|| TraceParent {
        trace_id: own.trace_id().to_bytes(),
        span_id: own.span_id().to_bytes(),
        flags: own.trace_flags().to_u8(),
    })
}

fn span_context(context: &TraceContext) -> SpanContext {
    let state = context.state.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(context.parent.trace_id),
        SpanId::from_bytes(context.parent.span_id),
        TraceFlags::new(context.parent.flags),
        true,
        state,
    )
}

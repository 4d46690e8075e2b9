//! Spans of the runner that continue the trace recorded in the events they handle.

use tidemark::trace::{relate, span_hook_set, Relation, TraceContext, TRACEPARENT};
use tidemark::Metadata;

use crate::feed::Incoming;

/// Records the event's `traceparent` on `span` (which has an empty `traceparent` field)
/// and, when a span hook is installed, makes the span a child of that context. Does
/// nothing for a disabled span.
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &Metadata) {
    if span.is_disabled() {
        return;
    }
    let Some(traceparent) = metadata.headers.get(TRACEPARENT) else { return };
    span.record("traceparent", traceparent.as_str());
    if span_hook_set() {
        if let Some(context) = TraceContext::of_metadata(metadata) {
            relate(span, &context, Relation::Child);
        }
    }
}

/// Links a batch's span to the trace context of each full event of the batch, when a span
/// hook is installed and the span is enabled.
pub(crate) fn link_batch(span: &tracing::Span, messages: &[Incoming]) {
    if span.is_disabled() || !span_hook_set() {
        return;
    }
    for message in messages {
        if let Incoming::Untrusted(event) | Incoming::Trusted(event) = message {
            if let Some(context) = TraceContext::of_metadata(&event.metadata) {
                relate(span, &context, Relation::Link);
            }
        }
    }
}

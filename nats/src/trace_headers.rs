//! The W3C trace context headers of a published event: written by the relay from the
//! event's metadata, read back into the metadata by the feed.

use async_nats::HeaderMap;
use tidemark::trace::{TraceContext, TraceParent, TRACEPARENT, TRACESTATE};
use tidemark::Metadata;

/// Copies a valid W3C trace context of the event's metadata into the `traceparent` and
/// `tracestate` headers (outside the signed headers: tracing is advisory). An invalid one
/// is left out.
pub(crate) fn put_trace_context(map: &mut HeaderMap, metadata: &Metadata) {
    let Some(traceparent) = metadata.headers.get(TRACEPARENT) else { return };
    if TraceParent::parse(traceparent).is_none() {
        return;
    }
    map.insert(TRACEPARENT, traceparent.as_str());
    if let Some(state) = metadata.headers.get(TRACESTATE) {
        if TraceContext::from_headers(Some(traceparent), Some(state)).is_some_and(|c| c.state.is_some()) {
            map.insert(TRACESTATE, state.as_str());
        }
    }
}

/// The W3C trace context of a message's `traceparent` and `tracestate` headers, written
/// into metadata; absent or invalid headers change nothing.
#[cfg(test)]
pub(crate) fn take_trace_context(map: Option<&HeaderMap>, metadata: &mut Metadata) {
    let Some(map) = map else { return };
    take_read_trace_context(&crate::headers::Headers::read(map), metadata);
}

/// [`take_trace_context`] on the headers of a message read already.
pub(crate) fn take_read_trace_context(headers: &crate::headers::Headers<'_>, metadata: &mut Metadata) {
    if let Some(context) = TraceContext::from_headers(headers.traceparent, headers.tracestate) {
        context.record(metadata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::HeaderValue;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_context_travels_from_metadata_to_headers_and_back() {
        let metadata = Metadata::new().with_header(TRACEPARENT, VALID).with_header(TRACESTATE, "vendor=1");
        let mut map = HeaderMap::new();
        put_trace_context(&mut map, &metadata);
        assert_eq!(map.get(TRACEPARENT).map(HeaderValue::as_str), Some(VALID));
        assert_eq!(map.get(TRACESTATE).map(HeaderValue::as_str), Some("vendor=1"));
        let mut back = Metadata::new();
        take_trace_context(Some(&map), &mut back);
        assert_eq!(back.headers, metadata.headers);
    }

    #[test]
    fn an_invalid_context_is_left_out() {
        let metadata = Metadata::new().with_header(TRACEPARENT, "00-bad").with_header(TRACESTATE, "vendor=1");
        let mut map = HeaderMap::new();
        put_trace_context(&mut map, &metadata);
        assert!(map.get(TRACEPARENT).is_none() && map.get(TRACESTATE).is_none());
        let mut nonsense = HeaderMap::new();
        nonsense.insert(TRACEPARENT, "nonsense");
        let mut back = Metadata::new();
        take_trace_context(Some(&nonsense), &mut back);
        take_trace_context(None, &mut back);
        assert!(back.headers.is_empty());
    }
}

//! W3C `traceparent` parsing and formatting, and its path through command handling.

use tidemark::trace::{TraceContext, TraceParent, MAX_TRACESTATE_LEN, TRACEPARENT, TRACESTATE};
use tidemark::Metadata;

const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_valid_traceparent_round_trips() {
    let parsed = TraceParent::parse(SAMPLE).expect("valid");
    assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parsed.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
    assert_eq!(parsed.flags, 1);
    assert_eq!(parsed.to_string(), SAMPLE);
}

#[test]
fn a_later_version_with_more_fields_is_read_as_version_00() {
    let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
    assert_eq!(TraceParent::parse(later).map(|p| p.to_string()).as_deref(), Some(SAMPLE));
}

#[test]
fn bad_traceparents_are_none() {
    let bad = [
        "",
        "00",
        "garbage",
        // uppercase hex
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        // all-zero trace id and span id
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // version ff, and version 00 with trailing data
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        // wrong separators and lengths
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
    ];
    for text in bad {
        assert_eq!(TraceParent::parse(text), None, "{text:?} must be refused");
    }
    let oversize = format!("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-{}", "a".repeat(1000));
    assert_eq!(TraceParent::parse(&oversize), None);
}

#[test]
fn a_child_keeps_the_trace_and_changes_the_span() {
    let parent = TraceParent::parse(SAMPLE).expect("valid");
    let child = parent.child();
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(child.flags, parent.flags);
    assert_ne!(child.span_id, parent.span_id);
    assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    let root = TraceParent::new_root();
    assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
    assert_ne!(root.trace_id, TraceParent::new_root().trace_id);
}

#[test]
fn an_invalid_or_oversize_tracestate_is_dropped() {
    let kept = TraceContext::from_headers(Some(SAMPLE), Some("vendor=abc")).expect("valid");
    assert_eq!(kept.state.as_deref(), Some("vendor=abc"));
    let long = "a".repeat(MAX_TRACESTATE_LEN + 1);
    assert_eq!(TraceContext::from_headers(Some(SAMPLE), Some(&long)).expect("valid").state, None);
    assert_eq!(TraceContext::from_headers(Some(SAMPLE), Some("a=\nb")).expect("valid").state, None);
    assert_eq!(TraceContext::from_headers(Some("nonsense"), Some("vendor=abc")), None);
    assert_eq!(TraceContext::from_headers(None, Some("vendor=abc")), None);
}

#[test]
fn a_context_is_recorded_in_and_read_from_metadata() {
    let context = TraceContext::from_headers(Some(SAMPLE), Some("vendor=abc")).expect("valid");
    let mut metadata = Metadata::new();
    context.record(&mut metadata);
    assert_eq!(metadata.headers.get(TRACEPARENT).map(String::as_str), Some(SAMPLE));
    assert_eq!(metadata.headers.get(TRACESTATE).map(String::as_str), Some("vendor=abc"));
    assert_eq!(TraceContext::of_metadata(&metadata), Some(context));
    let garbage = Metadata::new().with_header(TRACEPARENT, "not a traceparent");
    assert_eq!(TraceContext::of_metadata(&garbage), None);
}

#[tokio::test]
async fn the_current_context_is_the_scoped_one() {
    assert_eq!(TraceContext::current(), None);
    let context = TraceContext::new_root();
    let seen = context.clone().scope(async { TraceContext::current() }).await;
    assert_eq!(seen, Some(context));
}

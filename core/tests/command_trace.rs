//! Command handling records the trace context in the appended events' metadata.

use tidemark::trace::{TraceContext, TraceParent, TRACEPARENT};
use tidemark::{read_stream_to_end, CommandHandler, CommandOptions, EventStore, InMemoryEventStore, Metadata};

mod support;
use support::*;

async fn stored_traceparents(store: &InMemoryEventStore, stream: &tidemark::StreamId) -> Vec<Option<String>> {
    let events = read_stream_to_end(store, stream, tidemark::StreamVersion::EMPTY, 100).await.expect("read");
    events.into_iter().map(|e| e.metadata.headers.get(TRACEPARENT).cloned()).collect()
}

#[tokio::test]
async fn a_command_in_a_scope_records_a_child_of_the_current_context() {
    let store = InMemoryEventStore::new();
    let handler: Handler = CommandHandler::new(store.clone(), codec());
    let (id, context) = (wallet(), TraceContext::new_root());
    context.clone().scope(handler.handle(&id, &open(5), &no_options())).await.expect("handled");
    let stored = stored_traceparents(&store, &id).await;
    let recorded = TraceParent::parse(stored[0].as_deref().expect("recorded")).expect("valid");
    assert_eq!(recorded.trace_id, context.parent.trace_id);
    assert_ne!(recorded.span_id, context.parent.span_id);
}

#[tokio::test]
async fn a_traceparent_in_the_metadata_wins_and_garbage_is_ignored() {
    let store = InMemoryEventStore::new();
    let handler: Handler = CommandHandler::new(store.clone(), codec());
    let given = TraceParent::new_root();
    let options = CommandOptions::new().metadata(Metadata::new().with_header(TRACEPARENT, given.to_string()));
    let id = wallet();
    TraceContext::new_root().scope(handler.handle(&id, &open(5), &options)).await.expect("handled");
    let garbage = CommandOptions::new().metadata(Metadata::new().with_header(TRACEPARENT, "00-zz"));
    handler.handle(&id, &WalletCommand::Credit(1), &garbage).await.expect("tracing never fails a command");
    handler.handle(&id, &WalletCommand::Credit(1), &no_options()).await.expect("handled");
    let stored = stored_traceparents(&store, &id).await;
    let first = TraceParent::parse(stored[0].as_deref().expect("recorded")).expect("valid");
    assert_eq!(first.trace_id, given.trace_id);
    assert_ne!(first.span_id, given.span_id);
    let n = stored.len();
    assert_eq!(stored[n - 2].as_deref(), Some("00-zz"), "an invalid value is left as given, not replaced");
    assert_eq!(stored[n - 1], None, "no context, nothing recorded");
    assert!(store.stream_version(&id).await.is_ok());
}

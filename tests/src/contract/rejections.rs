//! Appends the store refuses as a whole: duplicate event ids, oversize events.

use serde_json::json;
use tidemark::{
    AppendRequest, CommandId, Error, EventStore, ExpectedVersion, Metadata, NewEvent, StreamVersion,
    DEFAULT_MAX_EVENT_BYTES,
};

use super::fixture::*;

/// An event id already stored, or twice in one append, fails the whole append.
pub async fn duplicate_event_id<S: EventStore>(store: S) {
    let (a, b) = (stream("dupid"), stream("dupid"));
    let taken = event(1);
    append(&store, &a, ExpectedVersion::NoStream, vec![taken.clone()]).await;
    let log_head = head(&store).await;

    let fresh = event(2);
    let command = CommandId::new();
    let reuse = AppendRequest::new(b.clone(), ExpectedVersion::NoStream, vec![fresh.clone(), taken.clone()])
        .with_command_id(command);
    match store.append(reuse).await {
        Err(Error::DuplicateEventId(id)) => assert_eq!(id, taken.event_id),
        other => panic!("expected a duplicate event id, got {other:?}"),
    }
    assert_unchanged(&store, &b, 0, log_head).await;
    assert_unchanged(&store, &a, 1, log_head).await;
    assert_eq!(store.command_outcome(command).await.unwrap(), None, "the command is not recorded");

    let twice = event(3);
    let result = try_append(&store, &b, ExpectedVersion::Any, vec![twice.clone(), twice.clone()]).await;
    match result {
        Err(Error::DuplicateEventId(id)) => assert_eq!(id, twice.event_id),
        other => panic!("expected a duplicate event id within the append, got {other:?}"),
    }
    assert_unchanged(&store, &b, 0, log_head).await;
    // Nothing of the failed appends was kept.
    append(&store, &b, ExpectedVersion::NoStream, vec![fresh, twice]).await;
}

fn big_event(bytes: usize) -> NewEvent {
    NewEvent::new("Blob", 1, raw(&json!({ "data": "x".repeat(bytes) })))
}

/// An event over `DEFAULT_MAX_EVENT_BYTES` (payload plus metadata) fails the whole
/// append with `EventTooLarge`; events under it are stored intact.
///
/// The store must be configured with the default limit.
pub async fn oversize_event<S: EventStore>(store: S) {
    let s = stream("oversize");
    let log_head = head(&store).await;
    let over = DEFAULT_MAX_EVENT_BYTES + 64 * 1024;
    let batch = vec![event(1), big_event(over)];
    match try_append(&store, &s, ExpectedVersion::NoStream, batch).await {
        Err(Error::EventTooLarge { stream, event_type, size, limit }) => {
            assert_eq!((stream, event_type.as_str()), (s.clone(), "Blob"));
            assert!(size > limit, "reported size {size} is over the limit");
            assert_eq!(limit, DEFAULT_MAX_EVENT_BYTES);
        }
        other => panic!("expected an oversize event, got {other:?}"),
    }
    assert_unchanged(&store, &s, 0, log_head).await;

    // Metadata counts too.
    let heavy = Metadata::new().with_header("blob", "y".repeat(over));
    let result = try_append(&store, &s, ExpectedVersion::Any, vec![event(2).with_metadata(heavy)]).await;
    assert!(matches!(result, Err(Error::EventTooLarge { .. })), "got {result:?}");
    assert_unchanged(&store, &s, 0, log_head).await;

    // The limit is inclusive: an event of exactly the limit is stored, one byte more is
    // refused, and the command id of the refused append is not recorded.
    let base = big_event(0).size();
    let command = CommandId::new();
    let request =
        AppendRequest::new(s.clone(), ExpectedVersion::NoStream, vec![big_event(DEFAULT_MAX_EVENT_BYTES - base + 1)])
            .with_command_id(command);
    assert!(
        matches!(store.append(request).await, Err(Error::EventTooLarge { size, .. }) if size == DEFAULT_MAX_EVENT_BYTES + 1)
    );
    assert_unchanged(&store, &s, 0, log_head).await;
    assert_eq!(store.command_outcome(command).await.unwrap(), None, "the refused command is not recorded");
    let exact = big_event(DEFAULT_MAX_EVENT_BYTES - base);
    assert_eq!(exact.size(), DEFAULT_MAX_EVENT_BYTES);
    append(&store, &s, ExpectedVersion::NoStream, vec![exact]).await;

    let under = DEFAULT_MAX_EVENT_BYTES - 64 * 1024;
    append(&store, &s, ExpectedVersion::Exact(tidemark::StreamVersion(1)), vec![big_event(under)]).await;
    let stored = whole_stream(&store, &s).await;
    assert_eq!(payload(&stored[1])["data"].as_str().map(str::len), Some(under));
}

/// Events breaking the storage rules (type name, schema version, NUL characters) fail
/// the whole append with `InvalidEvent` and write nothing.
pub async fn invalid_events<S: EventStore>(store: S) {
    let s = stream("invalid");
    let log_head = head(&store).await;
    let nul_payload = NewEvent::new(EVENT_TYPE, 1, raw(&json!({ "text": "a\u{0}b" })));
    let nul_metadata = event(1).with_metadata(Metadata::new().with_user("a\u{0}b"));
    let cases = [
        ("Bad.Type", NewEvent::new("Bad.Type", 1, raw(&json!({})))),
        ("", NewEvent::new("", 1, raw(&json!({})))),
        (EVENT_TYPE, NewEvent::new(EVENT_TYPE, 0, raw(&json!({})))),
        (EVENT_TYPE, nul_payload),
        (EVENT_TYPE, nul_metadata),
    ];
    for (name, bad) in cases {
        match try_append(&store, &s, ExpectedVersion::Any, vec![event(0), bad]).await {
            Err(Error::InvalidEvent { stream, event_type, .. }) => {
                assert_eq!((stream, event_type.as_str()), (s.clone(), name));
            }
            other => panic!("expected an invalid event ({name:?}), got {other:?}"),
        }
        assert_unchanged(&store, &s, 0, log_head).await;
    }
    // A backslash followed by "u0000" as text is not a NUL character.
    let text = NewEvent::new(EVENT_TYPE, 1, raw(&json!({ "text": "\\u0000" })));
    append(&store, &s, ExpectedVersion::NoStream, vec![text]).await;
    assert_eq!(payload(&whole_stream(&store, &s).await[0])["text"], "\\u0000");
}

fn of_tenant(n: u64, tenant: Option<&str>) -> NewEvent {
    let metadata = match tenant {
        Some(t) => Metadata::new().with_tenant(t),
        None => Metadata::new(),
    };
    event(n).with_metadata(metadata)
}

/// A stream belongs to the tenant of its first event (or to none): an append carrying
/// another tenant, or none where the stream has one, fails whole with `TenantMismatch`.
pub async fn tenant_mismatch<S: EventStore>(store: S) {
    let (owned, plain, mixed) = (stream("tenant"), stream("tenant"), stream("tenant"));
    append(&store, &owned, ExpectedVersion::NoStream, vec![of_tenant(1, Some("acme"))]).await;
    append(&store, &owned, ExpectedVersion::Any, vec![of_tenant(2, Some("acme"))]).await;
    append(&store, &plain, ExpectedVersion::NoStream, vec![of_tenant(1, None)]).await;
    let log_head = head(&store).await;

    let cases = [
        (&owned, vec![of_tenant(3, Some("acme")), of_tenant(4, Some("globex"))], Some("acme"), Some("globex")),
        (&owned, vec![of_tenant(5, None)], Some("acme"), None),
        (&plain, vec![of_tenant(6, Some("acme"))], None, Some("acme")),
        (&mixed, vec![of_tenant(7, Some("acme")), of_tenant(8, None)], Some("acme"), None),
    ];
    for (s, events, stream_tenant, tenant) in cases {
        match try_append(&store, s, ExpectedVersion::Any, events).await {
            Err(Error::TenantMismatch { stream, stream_tenant: st, tenant: t }) => {
                assert_eq!(&stream, s);
                assert_eq!((st.as_deref(), t.as_deref()), (stream_tenant, tenant), "on {s}");
            }
            other => panic!("expected a tenant mismatch on {s}, got {other:?}"),
        }
    }
    assert_unchanged(&store, &owned, 2, log_head).await;
    assert_unchanged(&store, &plain, 1, log_head).await;
    assert_unchanged(&store, &mixed, 0, log_head).await;
}

/// A tombstone that carries no tenant takes its stream's (deleting a stream needs no
/// knowledge of its tenant); one that names another tenant is refused like any event.
pub async fn tombstone_takes_the_stream_tenant<S: EventStore>(store: S) {
    let (owned, foreign) = (stream("tenant"), stream("tenant"));
    append(&store, &owned, ExpectedVersion::NoStream, vec![of_tenant(1, Some("acme"))]).await;
    append(&store, &foreign, ExpectedVersion::NoStream, vec![of_tenant(1, Some("acme"))]).await;
    store.tombstone(&owned, ExpectedVersion::Exact(StreamVersion(1))).await.expect("the tombstone is written");
    let read = store.read_stream(&owned, StreamVersion(1), 10).await.expect("read");
    assert_eq!(read.len(), 2);
    assert!(read[1].is_tombstone());
    assert_eq!(read[1].metadata.tenant.as_deref(), Some("acme"), "the tombstone took the stream's tenant");

    let named = AppendRequest::tombstone(foreign.clone(), ExpectedVersion::Any);
    let mut named = named;
    for e in &mut named.events {
        e.metadata = Metadata::new().with_tenant("globex");
    }
    match store.append(named).await {
        Err(Error::TenantMismatch { stream_tenant, tenant, .. }) => {
            assert_eq!((stream_tenant.as_deref(), tenant.as_deref()), (Some("acme"), Some("globex")));
        }
        other => panic!("expected a tenant mismatch, got {other:?}"),
    }
    assert_eq!(store.read_stream(&foreign, StreamVersion(1), 10).await.expect("read").len(), 1);
}

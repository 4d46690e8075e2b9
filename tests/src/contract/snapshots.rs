//! Snapshot storage: save, load, replace.

use chrono::Utc;
use serde_json::{json, Value};
use tidemark::{EventStore, ExpectedVersion, Snapshot, StreamId, StreamVersion};

use super::fixture::*;

fn snapshot(stream: &StreamId, schema_version: u32, version: u64, state: Value) -> Snapshot {
    Snapshot {
        stream_id: stream.clone(),
        schema_version,
        stream_version: StreamVersion(version),
        state,
        taken_at: Utc::now(),
    }
}

async fn stored<S: EventStore>(store: &S, stream: &StreamId) -> Option<(u32, u64, Value)> {
    let loaded = store.load_snapshot(stream).await.unwrap()?;
    assert_eq!(&loaded.stream_id, stream);
    Some((loaded.schema_version, loaded.stream_version.0, loaded.state))
}

/// The latest snapshot per stream is kept: a newer one (or one of the same version)
/// replaces it, an older one of the same schema version is ignored, and one of another
/// schema version always replaces it.
pub async fn snapshots_save_load_replace<S: EventStore>(store: S) {
    let (a, b) = (stream("snap"), stream("snap"));
    append(&store, &a, ExpectedVersion::NoStream, events(1, 8)).await;
    append(&store, &b, ExpectedVersion::NoStream, events(1, 2)).await;
    assert_eq!(store.load_snapshot(&a).await.unwrap(), None);

    let first = snapshot(&a, 1, 5, json!({ "balance": 5, "owner": "é\"x", "tags": [1, 2] }));
    store.save_snapshot(first.clone()).await.unwrap();
    let loaded = store.load_snapshot(&a).await.unwrap().expect("saved");
    assert_eq!((loaded.schema_version, loaded.stream_version), (1, StreamVersion(5)));
    assert_eq!(loaded.state, first.state);
    let drift = (loaded.taken_at - first.taken_at).num_microseconds().unwrap().abs();
    assert!(drift <= 1, "taken_at round-trips (to the microsecond), drifted {drift} µs");

    store.save_snapshot(snapshot(&a, 1, 3, json!("older"))).await.unwrap();
    assert_eq!(stored(&store, &a).await, Some((1, 5, first.state.clone())), "older is ignored");
    store.save_snapshot(snapshot(&a, 1, 5, json!("same version"))).await.unwrap();
    assert_eq!(stored(&store, &a).await, Some((1, 5, json!("same version"))));
    store.save_snapshot(snapshot(&a, 1, 7, json!("newer"))).await.unwrap();
    assert_eq!(stored(&store, &a).await, Some((1, 7, json!("newer"))));
    store.save_snapshot(snapshot(&a, 2, 2, json!("new schema"))).await.unwrap();
    assert_eq!(stored(&store, &a).await, Some((2, 2, json!("new schema"))), "another schema replaces");
    store.save_snapshot(snapshot(&a, 2, 1, json!("older again"))).await.unwrap();
    assert_eq!(stored(&store, &a).await, Some((2, 2, json!("new schema"))));

    assert_eq!(store.load_snapshot(&b).await.unwrap(), None, "snapshots are per stream");
    store.save_snapshot(snapshot(&b, 1, 2, json!("b"))).await.unwrap();
    assert_eq!(stored(&store, &b).await, Some((1, 2, json!("b"))));
    assert_eq!(stored(&store, &a).await, Some((2, 2, json!("new schema"))));
}

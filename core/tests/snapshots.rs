//! Snapshots taken by the command handler: when they are saved, how loading uses them,
//! and how stale ones are ignored and replaced.

use tidemark::{CommandHandler, EventStore, Snapshot, SnapshotPolicy, StreamId, StreamVersion};

mod support;
use support::*;

/// Without the state cache, so that every command loads (and so meets the snapshot).
fn snapshotting(every: u64, schema: u32) -> Handler {
    handler().without_cache().with_snapshots(SnapshotPolicy::every(every, schema))
}

async fn snapshot_version(h: &Handler, id: &StreamId) -> Option<u64> {
    h.store().load_snapshot(id).await.unwrap().map(|s| s.stream_version.0)
}

#[tokio::test]
async fn snapshots_are_saved_when_a_command_crosses_a_multiple_of_every() {
    let h = snapshotting(3, 1);
    let id = wallet();
    h.handle(&id, &open(0), &no_options()).await.unwrap(); // v1
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap(); // v2
    assert_eq!(snapshot_version(&h, &id).await, None);
    h.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3
    let snapshot = h.store().load_snapshot(&id).await.unwrap().expect("a snapshot at v3");
    let state = Wallet { open: true, owner: "alice".into(), balance: 3 };
    assert_eq!((snapshot.stream_version, snapshot.schema_version), (StreamVersion(3), 1));
    assert_eq!(snapshot.state, serde_json::to_value(&state).unwrap());

    h.handle(&id, &WalletCommand::Credit(4), &no_options()).await.unwrap(); // v4
    h.handle(&id, &WalletCommand::Credit(5), &no_options()).await.unwrap(); // v5
    assert_eq!(snapshot_version(&h, &id).await, Some(3));
    // Two events, v6 and v7: the command crosses 6, the snapshot holds all of it.
    h.handle(&id, &WalletCommand::CreditTwice(6, 7), &no_options()).await.unwrap();
    let snapshot = h.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!(snapshot.stream_version, StreamVersion(7));
    assert_eq!(snapshot.state["balance"], 25);
}

async fn tamper(h: &Handler, id: &StreamId, schema_version: u32, version: u64, state: serde_json::Value) {
    let snapshot = Snapshot {
        stream_id: id.clone(),
        schema_version,
        stream_version: StreamVersion(version),
        state,
        taken_at: chrono::Utc::now(),
    };
    h.store().save_snapshot(snapshot).await.unwrap();
}

fn marker(balance: i64) -> serde_json::Value {
    serde_json::to_value(Wallet { open: true, owner: "marker".into(), balance }).unwrap()
}

#[tokio::test]
async fn load_starts_from_the_snapshot_and_reads_only_later_events() {
    let h = snapshotting(3, 1);
    let id = wallet();
    h.handle(&id, &open(1), &no_options()).await.unwrap(); // v2
    h.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3, snapshot
    assert_eq!(snapshot_version(&h, &id).await, Some(3));
    tamper(&h, &id, 1, 3, marker(1_000_000)).await;
    h.handle(&id, &WalletCommand::Credit(5), &no_options()).await.unwrap(); // v4

    let loaded = h.load(&id).await.unwrap();
    let expected = Wallet { open: true, owner: "marker".into(), balance: 1_000_005 };
    assert_eq!((loaded.state, loaded.version, loaded.stale_snapshot), (expected, StreamVersion(4), false));
    // The same store without snapshots replays every event.
    let plain = CommandHandler::<Wallet, _>::new(h.store().clone(), codec());
    assert_eq!(plain.load(&id).await.unwrap().state.balance, 8);
}

#[tokio::test]
async fn snapshot_of_another_schema_version_is_ignored_then_replaced() {
    let old = snapshotting(3, 1);
    let id = wallet();
    old.handle(&id, &open(1), &no_options()).await.unwrap(); // v2
    old.handle(&id, &WalletCommand::Credit(2), &no_options()).await.unwrap(); // v3, snapshot v1
    old.handle(&id, &WalletCommand::Credit(3), &no_options()).await.unwrap(); // v4
    tamper(&old, &id, 1, 3, marker(1_000_000)).await;

    let new: Handler = CommandHandler::new(old.store().clone(), codec()).with_snapshots(SnapshotPolicy::every(3, 2));
    let loaded = new.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version, loaded.stale_snapshot), (6, StreamVersion(4), true));

    // v5 crosses no multiple of 3, but the stale snapshot is replaced anyway.
    new.handle(&id, &WalletCommand::Credit(4), &no_options()).await.unwrap();
    let snapshot = new.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!((snapshot.schema_version, snapshot.stream_version), (2, StreamVersion(5)));
    assert_eq!(snapshot.state["balance"], 10);
    let loaded = new.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.stale_snapshot), (10, false));
}

#[tokio::test]
async fn undecodable_snapshot_is_ignored_then_replaced() {
    let h = snapshotting(10, 1);
    let id = wallet();
    h.handle(&id, &open(4), &no_options()).await.unwrap(); // v2
    tamper(&h, &id, 1, 2, serde_json::json!("not a wallet")).await;
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.state.balance, loaded.stale_snapshot), (4, true));
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap(); // v3
    let snapshot = h.store().load_snapshot(&id).await.unwrap().unwrap();
    assert_eq!((snapshot.stream_version, snapshot.state["balance"].clone()), (StreamVersion(3), 5.into()));
}

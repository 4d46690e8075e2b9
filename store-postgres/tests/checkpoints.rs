//! Named log cursors and events by id.

mod support;

use tidemark::{EventId, EventStore, ExpectedVersion, LogPosition};
use tidemark_postgres::PgStoreConfig;
use tidemark_testkit::TestSchema;

#[tokio::test]
async fn a_checkpoint_is_saved_loaded_never_moved_back_and_reset() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::START);
    store.save_checkpoint("relay", LogPosition::new(7, 30)).await.expect("save");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(7, 30));
    store.save_checkpoint("relay", LogPosition::new(7, 12)).await.expect("older");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(7, 30), "never backwards");
    store.save_checkpoint("relay", LogPosition::new(9, 1)).await.expect("newer");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(9, 1));
    assert_eq!(store.load_checkpoint("other").await.expect("load"), LogPosition::START, "names are separate");
    store.set_checkpoint("relay", LogPosition::new(3, 3)).await.expect("rewind");
    assert_eq!(
        store.load_checkpoint("relay").await.expect("load"),
        LogPosition::new(3, 3),
        "set moves back on purpose"
    );
    store.reset_checkpoint("relay").await.expect("reset");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::START);
}

#[tokio::test]
async fn a_checkpoint_saved_in_a_rolled_back_transaction_is_not_saved() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let mut tx = store.pool().begin().await.expect("begin");
    store.save_checkpoint_in(&mut tx, "projection", LogPosition::new(5, 5)).await.expect("save");
    tx.rollback().await.expect("rollback");
    assert_eq!(store.load_checkpoint("projection").await.expect("load"), LogPosition::START);
}

#[tokio::test]
async fn an_event_is_found_by_its_id() {
    let schema = TestSchema::new().await;
    let store = support::store(&schema, PgStoreConfig::default()).await;
    let request = support::append("order-1", ExpectedVersion::NoStream, 2);
    let second = request.events[1].event_id;
    store.append(request).await.expect("append");
    let found = store.read_event(second).await.expect("read").expect("stored");
    assert_eq!((found.event_id, found.stream_version.0), (second, 2));
    assert_eq!(found.payload.get(), r#"{"n": 1}"#);
    assert!(store.read_event(EventId::new()).await.expect("read").is_none());
}

#[tokio::test]
async fn a_relaxed_checkpoint_save_never_moves_back_and_leaves_the_connection_durable() {
    let schema = TestSchema::new().await;
    // One connection: the statement after the save runs on the connection that saved.
    let store = support::store(&schema, PgStoreConfig::default().max_connections(1)).await;
    store.save_checkpoint_relaxed("relay", LogPosition::new(7, 30)).await.expect("save");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(7, 30));
    store.save_checkpoint_relaxed("relay", LogPosition::new(7, 12)).await.expect("older");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(7, 30), "never backwards");
    store.save_checkpoint_relaxed("relay", LogPosition::new(9, 1)).await.expect("newer");
    assert_eq!(store.load_checkpoint("relay").await.expect("load"), LogPosition::new(9, 1));
    let setting: String =
        sqlx::query_scalar("SELECT current_setting('synchronous_commit')").fetch_one(store.pool()).await.expect("show");
    assert_eq!(setting, "on", "the relaxed commit is the save's own, not the connection's");
}

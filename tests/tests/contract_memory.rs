//! The EventStore contract suite against the in-memory store.

tidemark_tests::contract_tests!(|| async { (tidemark::InMemoryEventStore::new(), ()) });

#[tokio::test]
async fn wait_for_log_without_spurious_wakeups() {
    tidemark_tests::contract::wait_for_log_without_spurious_wakeups(
        tidemark::InMemoryEventStore::new(),
    )
    .await;
}

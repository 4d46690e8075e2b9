//! The EventStore contract suite against the in-memory store.

tidemark_tests::contract_tests!(|| async { (tidemark::InMemoryEventStore::new(), ()) });

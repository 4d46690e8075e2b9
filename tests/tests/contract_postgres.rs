//! The EventStore contract suite against the PostgreSQL store, one schema per test:
//! once with the default configuration, once with group commit on.

use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

/// A migrated store in a fresh schema; the schema is dropped with the returned guard.
async fn store(config: PgStoreConfig) -> (PgEventStore, TestSchema) {
    let schema = TestSchema::new().await;
    let config = config.schema(schema.name());
    let store = PgEventStore::connect(schema.url(), config).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, schema)
}

/// The default configuration.
mod single {
    use super::*;

    // The race at full size (50 tasks × 100 commands on 10 streams): about 10 s here.
    tidemark_tests::contract_tests!(|| store(PgStoreConfig::default()));
}

/// Group commit: concurrent appends to distinct streams share a statement and a commit.
mod group_commit {
    use super::*;

    // The race at 50 tasks × 20 commands on 10 streams, to keep the run short.
    tidemark_tests::contract_tests!(
        || store(PgStoreConfig::default().group_commit(true)),
        race: 50, 20, 10
    );
}

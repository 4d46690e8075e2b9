//! Identifiers never reach SQL unchecked: a hostile schema name is refused with a typed
//! error before any statement runs, a hostile projection name is refused by the runner, and
//! the read models' own uses of a projection name (its schema, its documents) map it onto a
//! strict pattern. A canary table shows that no injected statement ran.

mod support;

use tidemark_postgres::{PgEventStore, PgStoreConfig, SetupError};
use tidemark_projections::{DocumentReader, InProcessBus, ProjectionError, ProjectionRunner, ReadModels, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;

use support::TallyProjection;
use tidemark_projections::ReadModelsAdmin;

const HOSTILE: [&str; 5] = [
    "x\"; DROP TABLE canary; --",
    "x'; DROP TABLE canary; --",
    "Public",
    "a b",
    "x\" CASCADE; DROP TABLE canary; CREATE SCHEMA \"y",
];

async fn canary(schema: &TestSchema) {
    sqlx::query("CREATE TABLE canary (id int)").execute(schema.pool()).await.expect("canary");
}

async fn canary_alive(schema: &TestSchema) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass('canary') IS NOT NULL")
        .fetch_one(schema.pool())
        .await
        .expect("look up the canary")
}

fn strict(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_schema_names_are_refused_before_any_sql() {
    let schema = TestSchema::new().await;
    canary(&schema).await;
    for hostile in HOSTILE {
        let config = PgStoreConfig::default().schema(hostile);
        let refused = PgEventStore::from_pool(schema.pool().clone(), config.clone());
        assert!(
            matches!(refused, Err(SetupError::InvalidSchemaName(ref name)) if name == hostile),
            "{hostile}: {refused:?}"
        );
        let refused = PgEventStore::connect(schema.url(), config.clone()).await;
        assert!(matches!(refused, Err(SetupError::InvalidSchemaName(_))), "{hostile}: {refused:?}");
        let refused = PgReadModels::from_pool(schema.pool().clone(), &config);
        assert!(matches!(refused, Err(SetupError::InvalidSchemaName(_))), "{hostile}: {refused:?}");
    }
    assert!(canary_alive(&schema).await, "no hostile statement ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_projection_names_are_refused_by_the_runner_and_neutralised_by_the_read_models() {
    support::logs();
    let schema = TestSchema::new().await;
    let store =
        PgEventStore::from_pool(schema.pool().clone(), PgStoreConfig::default().schema(schema.name())).expect("store");
    store.migrate().await.expect("migrate");
    canary(&schema).await;
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("projection migrations");
    let bus = InProcessBus::new(1).expect("bus");
    for hostile in HOSTILE {
        let runner = ProjectionRunner::new(
            TallyProjection::new(hostile),
            read_models.clone(),
            store.clone(),
            bus.clone(),
            RunnerConfig::default(),
        );
        // Upper case is a valid projection name (only the schema derived from it is lower case).
        if hostile != "Public" {
            assert!(matches!(runner, Err(ProjectionError::InvalidName { .. })), "{hostile}: {:?}", runner.err());
        }

        // Read models take the name as data: their schema for it is a strict identifier.
        let namespace = read_models.projection_schema(hostile);
        assert!(strict(&namespace), "{hostile} → {namespace}");
        assert_eq!(read_models.document(hostile, "c", "k").await.expect("read"), None);
        let mut tx = read_models.begin().await.expect("begin");
        read_models.create_namespace(&mut tx, hostile).await.expect("create the namespace");
        read_models.drop_projection(&mut tx, hostile).await.expect("drop it again");
        read_models.commit(tx).await.expect("commit");
    }
    assert!(canary_alive(&schema).await, "no hostile statement ran");
}

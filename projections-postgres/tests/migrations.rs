//! The migration sets of the store, the relay and this backend: a database migrated with
//! the single set of earlier releases (all ten files in one directory) upgrades to the
//! split sets without error, applies the migrations added since (numbered in each set's
//! own range) and ends with the same catalog as a fresh one; the sets apply in any order
//! and report nothing pending afterwards.

use std::path::{Path, PathBuf};

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tidemark_postgres::{PgEventStore, PgStoreConfig, RELAY_MIGRATIONS, STORE_MIGRATIONS};
use tidemark_projections_postgres::{PgReadModels, PROJECTION_MIGRATIONS};
use tidemark_testkit::TestSchema;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The ten migration files as one directory, laid out as releases before the split had
/// them (the files are the same bytes: the split moved them, so their checksums hold).
/// Files numbered from 1000 on came after the split and are left out.
fn single_set_dir() -> tempdir::Dir {
    let sources = [
        crate_dir().join("../store-postgres/migrations/store"),
        crate_dir().join("../store-postgres/migrations/relay"),
        crate_dir().join("migrations"),
    ];
    let dir = tempdir::Dir::new("single-set");
    for source in sources {
        for entry in std::fs::read_dir(&source).expect("read migrations") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("file name");
            if !name.to_string_lossy().starts_with("00") {
                continue;
            }
            std::fs::copy(&path, dir.path().join(name)).expect("copy migration");
        }
    }
    dir
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory under the system's temporary one, removed on drop.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Self {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn old_migrator(dir: &Path) -> Migrator {
    Migrator::new(dir).await.expect("load the single set")
}

fn parts(schema: &TestSchema) -> (PgEventStore, PgReadModels) {
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config.clone()).expect("store");
    let read_models = PgReadModels::from_pool(schema.pool().clone(), &config).expect("read models");
    (store, read_models)
}

async fn applied_versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    let sql = format!("SELECT version FROM \"{schema}\"._sqlx_migrations WHERE success ORDER BY version");
    sqlx::query_scalar(&sql).fetch_all(pool).await.expect("applied versions")
}

/// Tables with their columns and types, then functions with their arguments: what the
/// schema offers, read from the catalog.
async fn catalog(pool: &PgPool, schema: &str) -> Vec<String> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
           FROM information_schema.columns WHERE table_schema = $1
          ORDER BY table_name, column_name",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("columns");
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("functions");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT tablename || ' ' || regexp_replace(indexdef, ' ON [^ ]+ ', ' ON _ ')
           FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("indexes");
    columns.into_iter().chain(functions).chain(indexes).collect()
}

#[tokio::test]
async fn a_database_migrated_by_the_single_set_upgrades_to_the_split_sets() {
    let dir = single_set_dir();
    let old = old_migrator(dir.path()).await;
    assert_eq!(old.iter().count(), 10, "the single set of earlier releases has ten migrations");

    let upgraded = TestSchema::new().await;
    old.run(upgraded.pool()).await.expect("the single set applies");
    let before = catalog(upgraded.pool(), upgraded.name()).await;

    let (store, read_models) = parts(&upgraded);
    assert_eq!(store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
    let later: Vec<i64> = PROJECTION_MIGRATIONS.versions().filter(|v| *v >= 1000).collect();
    assert_eq!(read_models.pending_migrations().await.expect("pending"), later, "only the later ones");
    store.migrate().await.expect("the store's and relay's sets accept the old database");
    read_models.migrate().await.expect("the projection set accepts the old database");
    let expected: Vec<i64> = (1..=10).chain(later).collect();
    assert_eq!(applied_versions(upgraded.pool(), upgraded.name()).await, expected);
    let upgraded_catalog = catalog(upgraded.pool(), upgraded.name()).await;
    assert!(before.iter().all(|entry| upgraded_catalog.contains(entry)), "upgrading removed nothing");

    let fresh = TestSchema::new().await;
    let (store, read_models) = parts(&fresh);
    store.migrate().await.expect("store");
    read_models.migrate().await.expect("read models");
    assert_eq!(
        catalog(fresh.pool(), fresh.name()).await,
        upgraded_catalog,
        "a fresh database gets the same tables, functions and indexes as an upgraded one"
    );
}

#[tokio::test]
async fn the_sets_apply_in_any_order_and_leave_nothing_pending() {
    let schema = TestSchema::new().await;
    let (store, read_models) = parts(&schema);
    let mut expected: Vec<i64> = PROJECTION_MIGRATIONS.versions().collect();
    assert_eq!(read_models.pending_migrations().await.expect("pending"), expected);

    read_models.migrate().await.expect("the projection set first");
    assert_eq!(read_models.pending_migrations().await.expect("pending"), Vec::<i64>::new());
    let store_pending = store.pending_migrations().await.expect("pending");
    let mut store_versions: Vec<i64> = STORE_MIGRATIONS.versions().chain(RELAY_MIGRATIONS.versions()).collect();
    store_versions.sort_unstable();
    assert_eq!(store_pending, store_versions, "the store's sets are still pending");

    store.migrate().await.expect("then the store's");
    read_models.migrate().await.expect("and again: a no-op");
    assert_eq!(store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
    expected.extend(store_versions);
    expected.sort_unstable();
    assert_eq!(applied_versions(schema.pool(), schema.name()).await, expected);
}

#[tokio::test]
async fn a_partly_migrated_database_names_what_is_pending() {
    let schema = TestSchema::new().await;
    let (store, read_models) = parts(&schema);
    store.migrate().await.expect("store");
    let pending = read_models.pending_migrations().await.expect("pending");
    assert_eq!(pending, PROJECTION_MIGRATIONS.versions().collect::<Vec<i64>>());
    assert!(!pending.is_empty());
}

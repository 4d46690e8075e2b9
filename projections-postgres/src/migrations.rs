//! The tables and functions of the PostgreSQL read-model backend: projections'
//! bookkeeping, partitions' progress and feed cursors, dead letters, rogue messages and
//! the batch-recording function. They live in the store's schema, versioned in its
//! `_sqlx_migrations` table beside the store's own sets (numbers 3000–3999 for the ones
//! to come).

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tidemark_postgres::{migrate_set, pending_in_set, MigrationSet, SetupError};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The read-model backend's migrations.
pub const PROJECTION_MIGRATIONS: MigrationSet = MigrationSet::new("projections", &MIGRATOR);

/// Applies the backend's pending migrations to `schema` (created if needed).
pub(crate) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), SetupError> {
    migrate_set(pool, schema, PROJECTION_MIGRATIONS).await
}

/// The backend's migrations not applied to `schema` yet.
pub(crate) async fn pending(pool: &PgPool, schema: &str) -> Result<Vec<i64>, SetupError> {
    pending_in_set(pool, schema, PROJECTION_MIGRATIONS).await
}

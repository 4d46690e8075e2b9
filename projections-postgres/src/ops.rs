//! The schema's migrations in the ops commands of `tidemark-projections` (`migrate
//! --check`, `migrate --print-sql`), with the `cli` feature: every set this schema takes,
//! the store's, the relay's and this backend's, in the order they are applied. Mount
//! with `Ops::migrations(read_models.clone())`.

use tidemark_postgres::{migrate_set, pending_in_set, MigrationSet, RELAY_MIGRATIONS, STORE_MIGRATIONS};
use tidemark_projections::{OpsFuture, PendingMigration, ProjectionError, SchemaMigrations};

use crate::migrations::PROJECTION_MIGRATIONS;
use crate::postgres::PgReadModels;

/// The sets, in the order they are applied.
const SETS: [MigrationSet; 3] = [STORE_MIGRATIONS, RELAY_MIGRATIONS, PROJECTION_MIGRATIONS];

impl SchemaMigrations for PgReadModels {
    fn pending(&self) -> OpsFuture<'_, Vec<PendingMigration>> {
        Box::pin(async move {
            let mut pending = Vec::new();
            for set in SETS {
                let versions = pending_in_set(self.pool(), self.schema(), set)
                    .await
                    .map_err(ProjectionError::database("reading the applied migrations"))?;
                let missing = set.migrations().filter(|m| versions.contains(&m.version));
                pending.extend(missing.map(|m| PendingMigration::new(set.name(), m.version, &m.description, &m.sql)));
            }
            Ok(pending)
        })
    }

    fn apply(&self) -> OpsFuture<'_, ()> {
        // sqlx's migrator future is not `Send` for every lifetime the compiler asks about,
        // so it runs on a blocking thread of the runtime, which drives it to completion.
        let (pool, schema) = (self.pool().clone(), self.schema().to_owned());
        let handle = tokio::runtime::Handle::current();
        let applying = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                for set in SETS {
                    migrate_set(&pool, &schema, set).await?;
                }
                Ok::<(), tidemark_postgres::SetupError>(())
            })
        });
        Box::pin(async move {
            let applied = applying.await.map_err(ProjectionError::database("applying migrations"))?;
            applied.map_err(ProjectionError::database("applying migrations"))
        })
    }
}

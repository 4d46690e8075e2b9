//! The PostgreSQL side of a rebuild: swapping its shadow in, dropping a projection.

use sqlx::Executor;

use tidemark_projections::Result;

use crate::error::database;
use crate::postgres::{PgReadModels, PgTx};

impl PgReadModels {
    pub(crate) async fn swap_in(&self, tx: &mut PgTx, live: &str, shadow: &str, version: u32) -> Result<()> {
        let (streams, letters, partitions, projections) = (
            self.table("projection_streams"),
            self.table("dead_letters"),
            self.table("projection_partitions"),
            self.table("projections"),
        );
        let bookkeeping = [
            format!("DELETE FROM {streams} WHERE projection = $1"),
            format!("UPDATE {streams} SET projection = $1 WHERE projection = $2"),
            format!("DELETE FROM {letters} WHERE projection = $1"),
            format!("UPDATE {letters} SET projection = $1 WHERE projection = $2"),
            format!("DELETE FROM {partitions} WHERE projection = $2"),
            format!("DELETE FROM {projections} WHERE name = $2"),
            format!(
                "INSERT INTO {projections} (name, version) VALUES ($1, $3) \
                 ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, set_up_at = now()"
            ),
        ];
        for sql in bookkeeping {
            let query = sqlx::query(&sql).bind(live).bind(shadow).bind(i32::try_from(version).unwrap_or(i32::MAX));
            query.execute(tx.conn()).await.map_err(database("swapping a rebuilt projection in"))?;
        }
        let (live_schema, shadow_schema) = (self.projection_schema(live), self.projection_schema(shadow));
        let old = self.projection_schema(&format!("{live}~old"));
        let mut ddl = format!("DROP SCHEMA IF EXISTS \"{old}\" CASCADE;");
        if self.schema_exists(tx, &live_schema).await? {
            ddl.push_str(&format!("ALTER SCHEMA \"{live_schema}\" RENAME TO \"{old}\";"));
        }
        ddl.push_str(&format!(
            "ALTER SCHEMA \"{shadow_schema}\" RENAME TO \"{live_schema}\"; DROP SCHEMA IF EXISTS \"{old}\" CASCADE;"
        ));
        tx.conn().execute(sqlx::raw_sql(&ddl)).await.map_err(database("swapping a rebuilt projection's schema in"))?;
        Ok(())
    }

    pub(crate) async fn drop_all(&self, tx: &mut PgTx, projection: &str) -> Result<()> {
        let statements = [
            format!("DELETE FROM {} WHERE projection = $1", self.table("projection_streams")),
            format!("DELETE FROM {} WHERE projection = $1", self.table("dead_letters")),
            format!("DELETE FROM {} WHERE projection = $1", self.table("rogue_messages")),
            format!("DELETE FROM {} WHERE projection = $1", self.table("projection_partitions")),
            format!("DELETE FROM {} WHERE name = $1", self.table("projections")),
            format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.projection_schema(projection)),
        ];
        for sql in statements {
            let query = sqlx::query(&sql);
            let query = if sql.starts_with("DROP") { query } else { query.bind(projection) };
            query.execute(tx.conn()).await.map_err(database("dropping a projection"))?;
        }
        Ok(())
    }

    async fn schema_exists(&self, tx: &mut PgTx, schema: &str) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(tx.conn())
            .await
            .map_err(database("looking up a schema"))
    }
}

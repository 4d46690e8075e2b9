//! Paused projections: one row per paused projection in `projection_pauses`.

use tidemark_projections::Result;

use crate::error::database;
use crate::postgres::PgReadModels;

impl PgReadModels {
    /// Whether a row names `projection`.
    pub(crate) async fn select_paused(&self, projection: &str) -> Result<bool> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {} WHERE projection = $1)", self.table("projection_pauses"));
        sqlx::query_scalar(&sql)
            .bind(projection)
            .fetch_one(self.pool())
            .await
            .map_err(database("reading whether a projection is paused"))
    }

    /// Inserts (`paused`) or deletes the row of `projection`; whether a row changed.
    pub(crate) async fn update_paused(&self, projection: &str, paused: bool) -> Result<bool> {
        let table = self.table("projection_pauses");
        let sql = if paused {
            format!("INSERT INTO {table} (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING")
        } else {
            format!("DELETE FROM {table} WHERE projection = $1")
        };
        let done = sqlx::query(&sql)
            .bind(projection)
            .execute(self.pool())
            .await
            .map_err(database("pausing or resuming a projection"))?;
        Ok(done.rows_affected() > 0)
    }
}

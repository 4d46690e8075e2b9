//! The document API on PostgreSQL: the `documents` table of the store's schema.

use serde_json::Value;
use sqlx::Row;

use tidemark_projections::{ApplyError, Result};
use tidemark_projections::{DocumentReader, DocumentTx};

use crate::error::database;
use crate::postgres::{PgReadModels, PgTx};

// Statements name `documents` unqualified: the batch's `search_path` starts with the
// projection's schema (the live one, or the shadow one during a rebuild).
impl DocumentTx for PgTx {
    async fn get(&mut self, collection: &str, key: &str) -> Result<Option<Value>, ApplyError> {
        let sql = "SELECT body FROM documents WHERE collection = $1 AND key = $2";
        let body: Option<Value> =
            sqlx::query_scalar(sql).bind(collection).bind(key).fetch_optional(self.conn()).await?;
        Ok(body)
    }

    async fn put(&mut self, collection: &str, key: &str, body: Value) -> Result<(), ApplyError> {
        let sql = "INSERT INTO documents (collection, key, body) VALUES ($1, $2, $3) \
                   ON CONFLICT (collection, key) DO UPDATE SET body = EXCLUDED.body, updated_at = now()";
        sqlx::query(sql).bind(collection).bind(key).bind(body).execute(self.conn()).await?;
        Ok(())
    }

    async fn delete(&mut self, collection: &str, key: &str) -> Result<(), ApplyError> {
        let sql = "DELETE FROM documents WHERE collection = $1 AND key = $2";
        sqlx::query(sql).bind(collection).bind(key).execute(self.conn()).await?;
        Ok(())
    }
}

impl DocumentReader for PgReadModels {
    async fn document(&self, projection: &str, collection: &str, key: &str) -> Result<Option<Value>> {
        let schema = self.projection_schema(projection);
        let sql = format!("SELECT body FROM \"{schema}\".documents WHERE collection = $1 AND key = $2");
        let found = sqlx::query_scalar(&sql).bind(collection).bind(key).fetch_optional(self.pool()).await;
        match found {
            Err(e) if not_set_up(&e) => Ok(None),
            other => other.map_err(database("reading a document")),
        }
    }

    async fn documents(
        &self,
        projection: &str,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        // `starts_with` on text, then order by key: the primary key's index serves both.
        let schema = self.projection_schema(projection);
        let sql = format!(
            "SELECT key, body FROM \"{schema}\".documents WHERE collection = $1 AND starts_with(key, $2) \
             ORDER BY key LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(collection)
            .bind(prefix)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await;
        let rows = match rows {
            Err(e) if not_set_up(&e) => return Ok(Vec::new()),
            other => other.map_err(database("listing documents"))?,
        };
        rows.iter()
            .map(|row| {
                let key: String = row.try_get(0).map_err(database("decoding a document"))?;
                let body: Value = row.try_get(1).map_err(database("decoding a document"))?;
                Ok((key, body))
            })
            .collect()
    }
}

/// Whether a query failed because the projection's schema or table does not exist yet
/// (SQLSTATE 3F000 invalid_schema_name, 42P01 undefined_table): nothing is set up, so
/// there is nothing to read.
fn not_set_up(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|e| e.code());
    matches!(code.as_deref(), Some("3F000" | "42P01"))
}

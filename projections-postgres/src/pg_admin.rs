//! The lifecycle and operators' side of the PostgreSQL read models: set-up, rebuild swaps
//! and drops, dead letters and rogue messages, and the queries of status and audit.

use sqlx::Row;
use tidemark::{StreamId, StreamVersion};
use tidemark_projections::{DeadLetter, PartitionState, ReadModelsAdmin, Result, RogueMessage, Seen};

use crate::dead_letters::select_dead_letters;
use crate::error::database;
use crate::postgres::{partition_state, PgReadModels, PgTx};

impl ReadModelsAdmin for PgReadModels {
    async fn take_parked(&self, tx: &mut PgTx, projection: &str, stream: &StreamId) -> Result<Vec<DeadLetter>> {
        let sql = format!(
            "WITH unparked AS (UPDATE {} SET parked = false WHERE projection = $1 AND stream_id = $2) \
             DELETE FROM {} WHERE projection = $1 AND stream_id = $2 AND status = 'parked' RETURNING *",
            self.table("projection_streams"),
            self.table("dead_letters")
        );
        let mut letters = select_dead_letters(tx.conn(), &sql, projection, Some(stream.as_str())).await?;
        letters.sort_by_key(|l| l.stream_version);
        Ok(letters)
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>> {
        let sql = format!(
            "SELECT * FROM {} WHERE projection = $1 AND ($2::text IS NULL OR stream_id = $2) \
             ORDER BY stream_id, stream_version",
            self.table("dead_letters")
        );
        let mut conn = self.pool().acquire().await.map_err(database("reading dead letters"))?;
        select_dead_letters(&mut conn, &sql, projection, None).await
    }

    async fn rogue_messages(&self, projection: &str) -> Result<Vec<RogueMessage>> {
        self.select_rogue(projection).await
    }

    async fn skip_rogue(&self, tx: &mut PgTx, projection: &str, key: Option<&str>) -> Result<u64> {
        self.update_rogue_skipped(tx, projection, key).await
    }

    async fn set_up_version(&self, tx: &mut PgTx, projection: &str) -> Result<Option<u32>> {
        let sql = format!(
            "SELECT (SELECT version FROM {} WHERE name = $1) \
             FROM pg_advisory_xact_lock(hashtext('tidemark:setup:' || $2 || ':' || $1)), \
               set_config('search_path', $3, true)",
            self.table("projections")
        );
        let schema = self.schema().to_string();
        let version: Option<i32> = sqlx::query_scalar(&sql)
            .bind(projection)
            .bind(schema)
            .bind(self.search_path(projection))
            .fetch_one(tx.conn())
            .await
            .map_err(database("reading a projection's set-up version"))?;
        Ok(version.map(|v| u32::try_from(v).unwrap_or(0)))
    }

    async fn create_namespace(&self, tx: &mut PgTx, projection: &str) -> Result<()> {
        let schema = self.projection_schema(projection);
        // Runs once per projection version, at its set-up, never at an ordinary start.
        let statements = [
            format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""),
            format!(
                "CREATE TABLE IF NOT EXISTS \"{schema}\".documents ( \
                   collection text NOT NULL, key text NOT NULL, body jsonb NOT NULL, \
                   updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (collection, key))"
            ),
        ];
        for sql in statements {
            sqlx::query(&sql).execute(tx.conn()).await.map_err(database("creating a projection's schema"))?;
        }
        Ok(())
    }

    async fn lock_projection(&self, tx: &mut PgTx, projection: &str) -> Result<()> {
        self.lock_all(tx, projection).await
    }

    async fn swap(&self, tx: &mut PgTx, live: &str, shadow: &str, version: u32) -> Result<()> {
        self.swap_in(tx, live, shadow, version).await
    }

    async fn drop_projection(&self, tx: &mut PgTx, projection: &str) -> Result<()> {
        self.drop_all(tx, projection).await
    }

    async fn mark_set_up(&self, tx: &mut PgTx, projection: &str, version: u32) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (name, version) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, set_up_at = now()",
            self.table("projections")
        );
        sqlx::query(&sql)
            .bind(projection)
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .execute(tx.conn())
            .await
            .map_err(database("recording a projection's set-up"))?;
        Ok(())
    }

    async fn paused(&self, projection: &str) -> Result<bool> {
        self.select_paused(projection).await
    }

    async fn set_paused(&self, projection: &str, paused: bool) -> Result<bool> {
        self.update_paused(projection, paused).await
    }

    async fn stream_seen(&self, projection: &str, stream: &StreamId) -> Result<StreamVersion> {
        let sql = format!(
            "SELECT version FROM {} WHERE projection = $1 AND stream_id = $2",
            self.table("projection_streams")
        );
        let version: Option<i64> = sqlx::query_scalar(&sql)
            .bind(projection)
            .bind(stream.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading a seen stream version"))?;
        Ok(StreamVersion(version.map_or(0, |v| u64::try_from(v).unwrap_or(0))))
    }

    async fn partitions(&self, projection: &str) -> Result<Vec<(u32, PartitionState)>> {
        let sql = format!(
            "SELECT transaction_id, sequence, events, feed_epoch, feed_sequence, partition FROM {} \
             WHERE projection = $1 ORDER BY partition",
            self.table("projection_partitions")
        );
        let rows = sqlx::query(&sql)
            .bind(projection)
            .fetch_all(self.pool())
            .await
            .map_err(database("reading projection partitions"))?;
        rows.iter()
            .map(|row| {
                let partition: i32 = row.try_get(5).map_err(database("decoding a projection partition"))?;
                Ok((u32::try_from(partition).unwrap_or(0), partition_state(row)?))
            })
            .collect()
    }

    async fn seen_streams(
        &self,
        projection: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, Seen)>> {
        let sql = format!(
            "SELECT stream_id, version, parked FROM {} \
             WHERE projection = $1 AND stream_id COLLATE \"C\" > $2 COLLATE \"C\" \
             ORDER BY stream_id COLLATE \"C\" LIMIT $3",
            self.table("projection_streams")
        );
        let rows = sqlx::query(&sql)
            .bind(projection)
            .bind(after.map_or("", StreamId::as_str))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(database("reading seen streams"))?;
        let mut seen = Vec::with_capacity(rows.len());
        for row in rows {
            let decode = || database("decoding a seen stream");
            let id: String = row.try_get(0).map_err(decode())?;
            let version: i64 = row.try_get(1).map_err(decode())?;
            let parked: bool = row.try_get(2).map_err(decode())?;
            let id = StreamId::new(id).map_err(tidemark::Error::from)?;
            seen.push((id, Seen { version: StreamVersion(u64::try_from(version).unwrap_or(0)), parked }));
        }
        Ok(seen)
    }
}

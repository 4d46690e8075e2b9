//! Rogue messages on PostgreSQL: recording them with a batch, listing and skipping them.

use sqlx::postgres::PgRow;
use sqlx::Row;
use tidemark::{EventId, StreamId, StreamVersion};

use tidemark_projections::Result;

use crate::error::database;
use crate::postgres::{signed, PgReadModels, PgTx};
use tidemark_projections::{DeadLetterStatus, RogueMessage};

/// Inserts (or, for a redelivered message, updates) rogue messages inside a batch's
/// transaction.
pub(crate) async fn insert_rogue(
    read_models: &PgReadModels,
    tx: &mut PgTx,
    projection: &str,
    messages: &[RogueMessage],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (projection, message_key, partition, subject, stream_id, stream_version, event_id, \
           reason, status) \
         SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::uuid[], \
           $8::text[], $9::text[]) \
         ON CONFLICT (projection, message_key) DO UPDATE \
         SET reason = EXCLUDED.reason, subject = EXCLUDED.subject, recorded_at = now()",
        read_models.table("rogue_messages")
    );
    let text = |f: fn(&RogueMessage) -> String| messages.iter().map(f).collect::<Vec<_>>();
    let partitions: Vec<i32> = messages.iter().map(|m| i32::try_from(m.partition).unwrap_or(i32::MAX)).collect();
    let streams: Vec<Option<String>> = messages.iter().map(|m| m.stream_id.as_ref().map(StreamId::to_string)).collect();
    let versions: Vec<Option<i64>> = messages.iter().map(|m| m.stream_version.map(|v| signed(v.0))).collect();
    let ids: Vec<Option<uuid::Uuid>> = messages.iter().map(|m| m.event_id.map(|id| id.0)).collect();
    sqlx::query(&sql)
        .bind(projection)
        .bind(text(|m| m.key.clone()))
        .bind(partitions)
        .bind(text(|m| m.subject.clone()))
        .bind(streams)
        .bind(versions)
        .bind(ids)
        .bind(text(|m| m.reason.clone()))
        .bind(text(|m| m.status.as_str().to_owned()))
        .execute(tx.conn())
        .await
        .map_err(database("recording rogue messages"))?;
    Ok(())
}

impl PgReadModels {
    /// Every rogue message of `projection`, by key.
    pub(crate) async fn select_rogue(&self, projection: &str) -> Result<Vec<RogueMessage>> {
        let sql = format!("SELECT * FROM {} WHERE projection = $1 ORDER BY message_key", self.table("rogue_messages"));
        let rows = sqlx::query(&sql)
            .bind(projection)
            .fetch_all(self.pool())
            .await
            .map_err(database("reading rogue messages"))?;
        rows.iter().map(rogue_message).collect()
    }

    /// Marks parked rogue messages skipped (one key, or all); returns how many.
    pub(crate) async fn update_rogue_skipped(&self, tx: &mut PgTx, projection: &str, key: Option<&str>) -> Result<u64> {
        let sql = format!(
            "UPDATE {} SET status = 'skipped' \
             WHERE projection = $1 AND ($2::text IS NULL OR message_key = $2) AND status = 'parked'",
            self.table("rogue_messages")
        );
        let done = sqlx::query(&sql)
            .bind(projection)
            .bind(key)
            .execute(tx.conn())
            .await
            .map_err(database("skipping rogue messages"))?;
        Ok(done.rows_affected())
    }
}

fn rogue_message(row: &PgRow) -> Result<RogueMessage> {
    let get = || database("decoding a rogue message");
    let key: String = row.try_get("message_key").map_err(get())?;
    let partition: i32 = row.try_get("partition").map_err(get())?;
    let subject: String = row.try_get("subject").map_err(get())?;
    let reason: String = row.try_get("reason").map_err(get())?;
    let stream: Option<String> = row.try_get("stream_id").map_err(get())?;
    let version: Option<i64> = row.try_get("stream_version").map_err(get())?;
    let id: Option<uuid::Uuid> = row.try_get("event_id").map_err(get())?;
    let status: String = row.try_get("status").map_err(get())?;
    let mut message = RogueMessage::new(key, u32::try_from(partition).unwrap_or(0), subject, reason);
    message.stream_id = stream.and_then(|s| StreamId::new(s).ok());
    message.stream_version = version.and_then(|v| u64::try_from(v).ok()).map(StreamVersion);
    message.event_id = id.map(EventId);
    message.status = if status == "skipped" { DeadLetterStatus::Skipped } else { DeadLetterStatus::Parked };
    Ok(message)
}

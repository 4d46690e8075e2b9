//! Dead letters on PostgreSQL: writing them with a batch, reading them back.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tidemark::{EventId, StreamId, StreamVersion};

use tidemark_projections::Result;

use crate::error::database;
use crate::postgres::{position, signed, PgReadModels, PgTx};
use tidemark_projections::{DeadLetter, DeadLetterStatus};

/// Inserts (or updates) dead letters inside a batch's transaction.
pub(crate) async fn insert_dead_letters(
    read_models: &PgReadModels,
    tx: &mut PgTx,
    projection: &str,
    letters: &[DeadLetter],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (projection, stream_id, stream_version, event_id, event_type, transaction_id, sequence, \
           status, error) \
         SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::bigint[], $7::bigint[], \
           $8::text[], $9::text[]) \
         ON CONFLICT (projection, stream_id, stream_version) DO UPDATE \
         SET status = EXCLUDED.status, error = EXCLUDED.error, recorded_at = now()",
        read_models.table("dead_letters")
    );
    let column = |f: fn(&DeadLetter) -> String| letters.iter().map(f).collect::<Vec<_>>();
    let versions: Vec<i64> = letters.iter().map(|l| signed(l.stream_version.0)).collect();
    let ids: Vec<uuid::Uuid> = letters.iter().map(|l| l.event_id.0).collect();
    let xids: Vec<i64> = letters.iter().map(|l| signed(l.position.transaction_id)).collect();
    let seqs: Vec<i64> = letters.iter().map(|l| signed(l.position.sequence)).collect();
    sqlx::query(&sql)
        .bind(projection)
        .bind(column(|l| l.stream_id.to_string()))
        .bind(versions)
        .bind(ids)
        .bind(column(|l| l.event_type.clone()))
        .bind(xids)
        .bind(seqs)
        .bind(column(|l| l.status.as_str().to_owned()))
        .bind(column(|l| l.error.clone()))
        .execute(tx.conn())
        .await
        .map_err(database("recording dead letters"))?;
    Ok(())
}

/// Runs a statement returning whole `dead_letters` rows, bound to the projection and
/// (optionally) a stream id.
pub(crate) async fn select_dead_letters(
    conn: &mut PgConnection,
    sql: &str,
    projection: &str,
    stream: Option<&str>,
) -> Result<Vec<DeadLetter>> {
    let rows = sqlx::query(sql)
        .bind(projection)
        .bind(stream)
        .fetch_all(conn)
        .await
        .map_err(database("reading dead letters"))?;
    rows.iter().map(dead_letter).collect()
}

fn dead_letter(row: &PgRow) -> Result<DeadLetter> {
    let decode = database("decoding a dead letter");
    let stream: String = row.try_get("stream_id").map_err(decode)?;
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(database("decoding a dead letter"));
    let status: String = row.try_get("status").map_err(database("decoding a dead letter"))?;
    let id: uuid::Uuid = row.try_get("event_id").map_err(database("decoding a dead letter"))?;
    Ok(DeadLetter {
        stream_id: StreamId::new(stream).map_err(tidemark::Error::from)?,
        stream_version: StreamVersion(u64::try_from(get_i64("stream_version")?).unwrap_or(0)),
        event_id: EventId(id),
        event_type: row.try_get("event_type").map_err(database("decoding a dead letter"))?,
        position: position(get_i64("transaction_id")?, get_i64("sequence")?),
        status: if status == "skipped" { DeadLetterStatus::Skipped } else { DeadLetterStatus::Parked },
        error: row.try_get("error").map_err(database("decoding a dead letter"))?,
    })
}

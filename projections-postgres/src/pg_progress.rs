//! Recording a batch's progress on PostgreSQL: the streams' seen versions, the partition's
//! position and count, and the batch's dead letters and rogue messages, in the batch's
//! transaction. `record_checked` also checks, in the same statement, that every stream was
//! last seen where the batch expected (for batches applied before their check).

use sqlx::Row;

use crate::dead_letters::insert_dead_letters;
use tidemark_projections::Result;

use crate::error::database;
use crate::pg_literal;
use crate::pg_rogue::insert_rogue;
use crate::postgres::{signed, PgReadModels, PgTx};
use tidemark::StreamVersion;
use tidemark_projections::{CheckedCommit, Progress};

/// The SQLSTATE of `record_batch_if_seen` refusing a batch (migration 0009).
const REFUSED: &str = "TM001";

/// How a batch moves its partition's row on: the position only forward (a batch that
/// applied nothing new records the one it read, or one below it), the count by the
/// batch's events, the feed cursor (`$9`, `$10`; null for work that did not come from the
/// feed) only forward within its epoch, replaced by one of a new epoch.
const MOVE_PARTITION: &str = "ON CONFLICT (projection, partition) DO UPDATE SET \
    transaction_id = CASE WHEN (p.transaction_id, p.sequence) < ($5, $6) THEN $5 ELSE p.transaction_id END, \
    sequence = CASE WHEN (p.transaction_id, p.sequence) < ($5, $6) THEN $6 ELSE p.sequence END, \
    events = p.events + $7, \
    feed_epoch = coalesce($9, p.feed_epoch), \
    feed_sequence = CASE WHEN $9 IS NULL THEN p.feed_sequence \
        WHEN p.feed_epoch = $9 THEN greatest(p.feed_sequence, $10) ELSE $10 END, \
    updated_at = now()";

/// The columns a batch inserts into a partition's first row.
const PARTITION_COLUMNS: &str = "(projection, partition, transaction_id, sequence, events, feed_epoch, feed_sequence)";

/// A batch's streams as the three arrays the progress statements take.
struct StreamColumns<'a> {
    ids: Vec<&'a str>,
    versions: Vec<i64>,
    parked: Vec<bool>,
}

impl<'a> StreamColumns<'a> {
    fn of(progress: &'a Progress) -> Self {
        Self {
            ids: progress.streams.iter().map(|(s, _)| s.as_str()).collect(),
            versions: progress.streams.iter().map(|(_, seen)| signed(seen.version.0)).collect(),
            parked: progress.streams.iter().map(|(_, seen)| seen.parked).collect(),
        }
    }
}

/// A batch's progress, to record for `partition` of `projection`.
pub(crate) struct Recording<'a> {
    pub projection: &'a str,
    pub partition: u32,
    pub progress: &'a Progress,
}

/// `sql` with the parameters both progress statements take, `$1` to `$10`.
fn progress_query<'q>(
    sql: &'q str,
    batch: &Recording<'q>,
    columns: &'q StreamColumns<'q>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(batch.projection)
        .bind(i32::try_from(batch.partition).unwrap_or(i32::MAX))
        .bind(&columns.ids)
        .bind(&columns.versions)
        .bind(signed(batch.progress.position.transaction_id))
        .bind(signed(batch.progress.position.sequence))
        .bind(signed(batch.progress.events))
        .bind(&columns.parked)
        .bind(batch.progress.cursor.map(|c| c.epoch))
        .bind(batch.progress.cursor.map(|c| signed(c.sequence)))
}

impl PgReadModels {
    /// Records a batch's progress ([`ReadModels::record`]).
    pub(crate) async fn record_progress(&self, tx: &mut PgTx, batch: Recording<'_>) -> Result<()> {
        let sql = format!(
            "WITH seen AS ( \
               INSERT INTO {streams} AS s (projection, stream_id, version, parked) \
               SELECT $1, id, v, p FROM unnest($3::text[], $4::bigint[], $8::bool[]) AS u(id, v, p) \
               ON CONFLICT (projection, stream_id) DO UPDATE \
               SET version = GREATEST(s.version, EXCLUDED.version), parked = EXCLUDED.parked) \
             INSERT INTO {partitions} AS p {PARTITION_COLUMNS} \
             VALUES ($1, $2, $5, $6, $7, $9, $10) \
             {MOVE_PARTITION}",
            streams = self.table("projection_streams"),
            partitions = self.table("projection_partitions"),
        );
        let columns = StreamColumns::of(batch.progress);
        progress_query(&sql, &batch, &columns)
            .execute(tx.conn())
            .await
            .map_err(database("recording projection progress"))?;
        self.record_letters(tx, batch.projection, batch.progress).await
    }

    /// Checks and records a batch's progress in one statement ([`BatchOptimisations::record_if_seen`](tidemark_projections::BatchOptimisations::record_if_seen)).
    pub(crate) async fn record_checked(
        &self,
        tx: &mut PgTx,
        batch: Recording<'_>,
        expected: &[StreamVersion],
    ) -> Result<bool> {
        // One statement checks and records. Each stream's stored version is read with one
        // index probe (a join of the batch's streams with `projection_streams` got a
        // generic plan, made while the table was small, that read every row of the
        // projection); the writes run only when every stream was last seen at its
        // expected version (0 when never seen) and is not parked. The arrays are read
        // through scalar subqueries, so the statement keeps one generic plan (see
        // `lock_and_read_seen`).
        let sql = format!(
            "WITH u AS (SELECT * FROM unnest((SELECT $3::text[]), (SELECT $4::bigint[]), (SELECT $8::bool[]), \
                 (SELECT $11::bigint[])) AS u(id, v, p, prev)), \
             checked AS ( \
               SELECT coalesce(bool_and(coalesce(s.version, 0) = u.prev AND NOT coalesce(s.parked, false)), true) AS ok \
               FROM u LEFT JOIN LATERAL (SELECT ps.version, ps.parked FROM {streams} ps \
                 WHERE ps.projection = $1 AND ps.stream_id = u.id LIMIT 1) AS s ON true), \
             moved AS ( \
               INSERT INTO {streams} AS s (projection, stream_id, version, parked) \
               SELECT $1, id, v, p FROM u WHERE (SELECT ok FROM checked) \
               ON CONFLICT (projection, stream_id) DO UPDATE SET version = EXCLUDED.version, parked = EXCLUDED.parked), \
             moved_on AS ( \
               INSERT INTO {partitions} AS p {PARTITION_COLUMNS} \
               SELECT $1, $2, $5, $6, $7, $9, $10 WHERE (SELECT ok FROM checked) {MOVE_PARTITION}) \
             SELECT ok FROM checked",
            streams = self.table("projection_streams"),
            partitions = self.table("projection_partitions"),
        );
        if expected.len() != batch.progress.streams.len() {
            return Ok(false);
        }
        let columns = StreamColumns::of(batch.progress);
        let expected: Vec<i64> = expected.iter().map(|v| signed(v.0)).collect();
        let row = progress_query(&sql, &batch, &columns)
            .bind(&expected)
            .fetch_one(tx.conn())
            .await
            .map_err(database("recording projection progress"))?;
        let recorded: bool = row.try_get(0).map_err(database("recording projection progress"))?;
        if recorded {
            self.record_letters(tx, batch.projection, batch.progress).await?;
        }
        Ok(recorded)
    }

    /// Checks, records and commits a batch in one round trip ([`BatchOptimisations::commit_if_seen`](tidemark_projections::BatchOptimisations::commit_if_seen)):
    /// the function of migration 0009, the savepoint's release and the `COMMIT`, as one
    /// simple query with the batch's values written out. A batch with dead letters or rogue
    /// messages (never one applied before its check), or a transaction with no savepoint to
    /// return to, takes the checking record and a separate commit.
    pub(crate) async fn commit_checked(
        &self,
        mut tx: PgTx,
        batch: Recording<'_>,
        expected: &[StreamVersion],
    ) -> Result<CheckedCommit<PgTx>> {
        let progress = batch.progress;
        if !tx.has_savepoint() || !progress.dead_letters.is_empty() || !progress.rogue.is_empty() {
            if !self.record_checked(&mut tx, batch, expected).await? {
                return Ok(CheckedCommit::Refused(tx));
            }
            tx.commit().await?;
            return Ok(CheckedCommit::Committed);
        }
        if expected.len() != progress.streams.len() {
            return Ok(CheckedCommit::Refused(tx));
        }
        let columns = StreamColumns::of(progress);
        let expected: Vec<i64> = expected.iter().map(|v| signed(v.0)).collect();
        let sql = format!(
            "SELECT {}({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            self.table("record_batch_if_seen"),
            pg_literal::text(batch.projection),
            i32::try_from(batch.partition).unwrap_or(i32::MAX),
            pg_literal::text_array(&columns.ids),
            pg_literal::bigint_array(&columns.versions),
            pg_literal::bool_array(&columns.parked),
            pg_literal::bigint_array(&expected),
            signed(progress.position.transaction_id),
            signed(progress.position.sequence),
            signed(progress.events),
            progress.cursor.map_or_else(|| "NULL".to_owned(), |c| c.epoch.to_string()),
            progress.cursor.map_or_else(|| "NULL".to_owned(), |c| signed(c.sequence).to_string()),
        );
        match tx.commit_after(&sql).await {
            Ok(()) => Ok(CheckedCommit::Committed),
            Err((tx, e)) if e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == REFUSED) => {
                Ok(CheckedCommit::Refused(tx))
            }
            Err((_, e)) => Err(database("recording and committing projection progress")(e)),
        }
    }

    /// Records a batch's dead letters and rogue messages.
    async fn record_letters(&self, tx: &mut PgTx, projection: &str, progress: &Progress) -> Result<()> {
        if !progress.dead_letters.is_empty() {
            insert_dead_letters(self, tx, projection, &progress.dead_letters).await?;
        }
        if !progress.rogue.is_empty() {
            insert_rogue(self, tx, projection, &progress.rogue).await?;
        }
        Ok(())
    }
}

//! Read models in PostgreSQL: batches run in a sqlx transaction, bookkeeping lives in the
//! store's schema (this crate's migrations).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Executor, PgPool, Row};
use tidemark::{LogPosition, StreamId, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig, SetupError};

use tidemark_projections::{ProjectionError, Result};

use crate::error::database;
use crate::pg_progress::Recording;
pub use crate::pg_tx::PgTx;
use crate::pg_tx::SAVEPOINT;
use tidemark_projections::FeedCursor;
use tidemark_projections::{BatchOptimisations, CheckedCommit, PartitionState, Progress, ReadModels, Seen};

/// Read models in the PostgreSQL database of a [`PgEventStore`], in the store's schema
/// ([`migrate`](Self::migrate) creates the runtime's tables there).
#[derive(Debug, Clone)]
pub struct PgReadModels {
    pool: PgPool,
    schema: Arc<str>,
}

impl PgReadModels {
    /// Read models next to `store`, in its database and schema.
    pub fn new(store: &PgEventStore) -> Self {
        Self { pool: store.pool().clone(), schema: Arc::from(store.config().schema.as_str()) }
    }

    /// Read models on a pool of their own (a process manager's batch holds a read-model
    /// transaction while its commands need store connections: separate pools keep one
    /// from starving the other), in the schema of the store configured by `config`.
    pub fn from_pool(pool: PgPool, config: &PgStoreConfig) -> Result<Self, SetupError> {
        config.validate()?;
        Ok(Self { pool, schema: Arc::from(config.schema.as_str()) })
    }

    /// Creates the store's schema if needed and applies this crate's pending migrations
    /// ([`PROJECTION_MIGRATIONS`](crate::PROJECTION_MIGRATIONS)). Safe to run again, and
    /// from several processes at once.
    pub async fn migrate(&self) -> Result<(), SetupError> {
        crate::migrations::migrate(&self.pool, &self.schema).await
    }

    /// This crate's migrations not applied to the schema yet.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, SetupError> {
        crate::migrations::pending(&self.pool, &self.schema).await
    }

    /// The pool read models are written through.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema holding the runtime's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema holding `projection`'s own tables (and its documents): the store's
    /// schema, `_`, and the projection's name when it is lowercase and short enough;
    /// otherwise a cleaned prefix of it and a hash, so names never collide.
    pub fn projection_schema(&self, projection: &str) -> String {
        let clean: String = projection
            .chars()
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '_' })
            .collect();
        let room = 63usize.saturating_sub(self.schema.len() + 1);
        if clean == projection && clean.len() <= room {
            return format!("{}_{clean}", self.schema);
        }
        let hash = tidemark::__private::stable_hash(projection.as_bytes());
        let keep = room.saturating_sub(9).min(clean.len());
        format!("{}_{}_{hash:08x}", self.schema, &clean[..keep])
    }

    /// The `search_path` of a batch of `projection`: its schema, then the store's.
    pub(crate) fn search_path(&self, projection: &str) -> String {
        format!("\"{}\", \"{}\"", self.projection_schema(projection), self.schema)
    }

    pub(crate) fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.schema)
    }
}

pub(crate) fn position(xid: i64, sequence: i64) -> LogPosition {
    LogPosition::new(u64::try_from(xid).unwrap_or(0), u64::try_from(sequence).unwrap_or(0))
}

pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A partition's state from the first five columns of `row`: transaction id, position,
/// events, feed epoch and feed sequence.
pub(crate) fn partition_state(row: &sqlx::postgres::PgRow) -> Result<PartitionState> {
    let get = |i: usize| row.try_get::<i64, _>(i).map_err(database("decoding a projection partition"));
    let maybe = |i: usize| row.try_get::<Option<i64>, _>(i).map_err(database("decoding a projection partition"));
    let cursor = match (maybe(3)?, maybe(4)?) {
        (Some(epoch), Some(sequence)) => Some(FeedCursor::new(epoch, u64::try_from(sequence).unwrap_or(0))),
        _ => None,
    };
    Ok(PartitionState { position: position(get(0)?, get(1)?), events: u64::try_from(get(2)?).unwrap_or(0), cursor })
}

impl ReadModels for PgReadModels {
    type Tx = PgTx;

    async fn begin(&self) -> Result<PgTx> {
        let conn = self.pool.acquire().await.map_err(database("beginning a projection transaction"))?;
        PgTx::begin(conn, self.schema.clone(), "BEGIN").await
    }

    async fn begin_batch(&self, projection: &str, partition: u32) -> Result<PgTx> {
        // `BEGIN` and the batch's locks in one round trip (one simple query).
        // The projection's search_path is set here too, and a savepoint marks where
        // `undo_batch` returns to: a batch may then be applied before its seen versions
        // are read. Only integers and the quoted names of schemas (lowercase letters,
        // digits and `_`) go into the text.
        let conn = self.pool.acquire().await.map_err(database("beginning a projection batch"))?;
        let path = self.search_path(projection).replace('\'', "''");
        let sql = format!(
            "BEGIN; {}, set_config('search_path', '{path}', true); SAVEPOINT {SAVEPOINT}",
            self.batch_locks_sql(projection, partition)
        );
        let mut tx = PgTx::begin(conn, self.schema.clone(), &sql).await?;
        tx.locked(projection, partition);
        tx.saved();
        Ok(tx)
    }

    async fn commit(&self, tx: PgTx) -> Result<()> {
        tx.commit().await
    }

    fn is_unavailable(&self, error: &(dyn std::error::Error + 'static)) -> bool {
        crate::error::is_transient_database(error) || tidemark_projections::is_connection_loss(error)
    }

    async fn lock_partition(&self, tx: &mut PgTx, projection: &str, partition: u32) -> Result<PartitionState> {
        // The advisory locks first (waiting for another batch of the same partition, or a
        // rebuild, to end), then the row, read with a snapshot taken after them: it shows
        // what that batch committed. The projection's unqualified table names resolve in
        // its own schema. The commit waits for its WAL flush (`synchronous_commit` stays
        // on): a commit seen by readers (read-your-writes waits, process managers' next
        // steps) is not taken back by a database crash.
        self.take_batch_locks(tx, projection, partition).await?;
        let sql = format!(
            "SELECT coalesce(p.transaction_id, 0), coalesce(p.sequence, 0), coalesce(p.events, 0), \
               p.feed_epoch, p.feed_sequence, set_config('search_path', $3, true) \
             FROM (SELECT 1) AS one LEFT JOIN {} AS p ON p.projection = $1 AND p.partition = $2",
            self.table("projection_partitions")
        );
        let row = sqlx::query(&sql)
            .bind(projection)
            .bind(i32::try_from(partition).unwrap_or(i32::MAX))
            .bind(self.search_path(projection))
            .fetch_one(tx.conn())
            .await
            .map_err(database("reading a projection partition"))?;
        partition_state(&row)
    }

    async fn seen_versions(
        &self,
        tx: &mut PgTx,
        projection: &str,
        streams: &[StreamId],
    ) -> Result<HashMap<StreamId, Seen>> {
        // One index probe per stream: `stream_id = ANY($2)` let PostgreSQL cache a plan
        // that filtered every row of the projection, slower as the read model grew. The
        // array is read through a scalar subquery, as in `lock_and_read_seen`, so that the
        // generic plan is kept.
        let sql = format!(
            "SELECT s.stream_id, s.version, s.parked FROM unnest((SELECT $2::text[])) AS u(id) \
             CROSS JOIN LATERAL (SELECT stream_id, version, parked FROM {} \
               WHERE projection = $1 AND stream_id = u.id LIMIT 1) AS s",
            self.table("projection_streams")
        );
        let ids: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
        let rows = sqlx::query(&sql)
            .bind(projection)
            .bind(&ids)
            .fetch_all(tx.conn())
            .await
            .map_err(database("reading seen stream versions"))?;
        let by_name: HashMap<&str, &StreamId> = streams.iter().map(|s| (s.as_str(), s)).collect();
        let mut seen = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: &str = row.try_get(0).map_err(database("decoding a seen stream version"))?;
            let version: i64 = row.try_get(1).map_err(database("decoding a seen stream version"))?;
            let parked: bool = row.try_get(2).map_err(database("decoding a seen stream version"))?;
            if let Some(stream) = by_name.get(id) {
                seen.insert(
                    (*stream).clone(),
                    Seen { version: StreamVersion(u64::try_from(version).unwrap_or(0)), parked },
                );
            }
        }
        Ok(seen)
    }

    async fn lock_and_read_seen(
        &self,
        tx: &mut PgTx,
        projection: &str,
        partition: u32,
        streams: &[StreamId],
    ) -> Result<(PartitionState, HashMap<StreamId, Seen>)> {
        // The locks are taken already when the transaction began for this batch
        // (`begin_batch`); then this is one round trip, a read with a snapshot taken after
        // them. The search_path is set for the rest of the batch as `lock_partition` sets it.
        // The stream ids are read through a scalar subquery, so no plan knows how many there
        // are: the plans made for the first executions cost no less than a generic one, and
        // the statement keeps a plan made once per connection. Given to `unnest` directly,
        // each execution's plan knew the array's length and cost less than the generic
        // plan, so every batch planned the statement again (0.13 ms of server time each,
        // half the statement's).
        self.take_batch_locks(tx, projection, partition).await?;
        let sql = format!(
            "WITH seen AS ( \
               SELECT coalesce(array_agg(s.stream_id), '{{}}') AS ids, coalesce(array_agg(s.version), '{{}}') AS versions, \
                 coalesce(array_agg(s.parked), '{{}}') AS parked \
               FROM unnest((SELECT $3::text[])) AS u(id) \
               CROSS JOIN LATERAL (SELECT ps.stream_id, ps.version, ps.parked FROM {streams} ps \
                 WHERE ps.projection = $1 AND ps.stream_id = u.id LIMIT 1) AS s) \
             SELECT coalesce(p.transaction_id, 0), coalesce(p.sequence, 0), coalesce(p.events, 0), \
               p.feed_epoch, p.feed_sequence, seen.ids, seen.versions, seen.parked, \
               set_config('search_path', $4, true) \
             FROM seen LEFT JOIN {partitions} AS p ON p.projection = $1 AND p.partition = $2",
            partitions = self.table("projection_partitions"),
            streams = self.table("projection_streams"),
        );
        let ids: Vec<&str> = streams.iter().map(StreamId::as_str).collect();
        let row = sqlx::query(&sql)
            .bind(projection)
            .bind(i32::try_from(partition).unwrap_or(i32::MAX))
            .bind(&ids)
            .bind(self.search_path(projection))
            .fetch_one(tx.conn())
            .await
            .map_err(database("reading seen stream versions"))?;
        let state = partition_state(&row)?;
        let decode = database("decoding seen stream versions");
        let names: Vec<String> = row.try_get(5).map_err(decode)?;
        let versions: Vec<i64> = row.try_get(6).map_err(database("decoding seen stream versions"))?;
        let parked: Vec<bool> = row.try_get(7).map_err(database("decoding seen stream versions"))?;
        let by_name: HashMap<&str, &StreamId> = streams.iter().map(|s| (s.as_str(), s)).collect();
        let mut seen = HashMap::with_capacity(names.len());
        for ((name, version), parked) in names.iter().zip(versions).zip(parked) {
            if let Some(stream) = by_name.get(name.as_str()) {
                seen.insert(
                    (*stream).clone(),
                    Seen { version: StreamVersion(u64::try_from(version).unwrap_or(0)), parked },
                );
            }
        }
        Ok((state, seen))
    }

    async fn record(&self, tx: &mut PgTx, projection: &str, partition: u32, progress: &Progress) -> Result<()> {
        self.record_progress(tx, Recording { projection, partition, progress }).await
    }
}

impl BatchOptimisations for PgReadModels {
    fn undoes_batches(&self) -> bool {
        true
    }

    fn begins_early(&self) -> bool {
        // Only while another connection stays free for everything else (status queries,
        // dead letters, other partitions): a transaction begun early sits idle on its own.
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let in_use = self.pool.size().saturating_sub(idle);
        in_use.saturating_add(2) <= self.pool.options().get_max_connections()
    }

    async fn record_if_seen(
        &self,
        tx: &mut PgTx,
        projection: &str,
        partition: u32,
        progress: &Progress,
        expected: &[StreamVersion],
    ) -> Result<bool> {
        self.record_checked(tx, Recording { projection, partition, progress }, expected).await
    }

    async fn commit_if_seen(
        &self,
        tx: PgTx,
        projection: &str,
        partition: u32,
        progress: &Progress,
        expected: &[StreamVersion],
    ) -> Result<CheckedCommit<PgTx>> {
        self.commit_checked(tx, Recording { projection, partition, progress }, expected).await
    }

    async fn undo_batch(&self, tx: &mut PgTx) -> Result<()> {
        if !tx.has_savepoint() {
            return Err(ProjectionError::Config("only a batch's transaction can be undone"));
        }
        let sql = format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}");
        tx.conn().execute(sql.as_str()).await.map_err(database("undoing a projection batch"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_models(schema: &str) -> PgReadModels {
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").expect("lazy pool");
        PgReadModels::from_pool(pool, &PgStoreConfig::default().schema(schema)).expect("valid schema")
    }

    #[tokio::test]
    async fn projection_schemas_are_readable_when_they_can_be_and_always_distinct_and_short() {
        let models = read_models("shop");
        assert_eq!(models.projection_schema("orders"), "shop_orders");
        let names = ["Orders", "orders-v2", "orders~rebuild", "orders~old", "orders_v2"];
        let schemas: std::collections::HashSet<String> = names.iter().map(|n| models.projection_schema(n)).collect();
        assert_eq!(schemas.len(), names.len(), "{schemas:?}");
        let long = read_models(&"s".repeat(48));
        for name in ["a", &"x".repeat(64), "orders~rebuild"] {
            let schema = long.projection_schema(name);
            assert!(schema.len() <= 63, "{schema} is too long for PostgreSQL");
        }
    }

    #[tokio::test]
    async fn an_invalid_schema_is_refused() {
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").expect("lazy pool");
        let made = PgReadModels::from_pool(pool, &PgStoreConfig::default().schema("Bad\"Name"));
        assert!(matches!(made, Err(SetupError::InvalidSchemaName(_))));
    }
}

//! What holds the global log back, and whether transaction ids still make sense.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use tidemark::{Error, StreamId, StreamVersion};

use crate::error::backend;
use crate::store::PgEventStore;
use crate::tenant::PgTenantStore;

/// A transaction that keeps log readers from moving on: events written after it
/// started become readable only once it ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HoldingTransaction {
    /// Backend process id (`pg_stat_activity.pid`); `None` for a prepared transaction.
    pub pid: Option<i32>,
    /// Its database.
    pub database: Option<String>,
    /// Its user.
    pub user: Option<String>,
    /// `active`, `idle in transaction`, ..., or `prepared`.
    pub state: Option<String>,
    /// Its transaction id.
    pub transaction_id: u64,
    /// When the transaction started.
    pub started_at: Option<DateTime<Utc>>,
    /// How long it has been open.
    pub age: Duration,
    /// The start of its current or last statement (at most 200 characters).
    pub query: Option<String>,
}

/// The state of the log horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LogHorizon {
    /// Log readers return events of transactions below this id.
    pub horizon: u64,
    /// The id the next transaction will get.
    pub next_transaction: u64,
    /// The highest transaction id stored with an event, if any.
    pub highest_stored: Option<u64>,
    /// The oldest running transaction in the cluster, if any: what holds the log back.
    pub oldest: Option<HoldingTransaction>,
}

impl LogHorizon {
    /// True when stored transaction ids are ahead of the server's: the database was
    /// restored from a dump or moved to another cluster, and new events would sort
    /// before old ones. Readers' cursors must be reset before the log is used again.
    pub fn transaction_ids_regressed(&self) -> bool {
        self.highest_stored.is_some_and(|h| h >= self.next_transaction)
    }
}

const OLDEST: &str = "SELECT pid, datname::text, usename::text, state, backend_xid::text::bigint, xact_start, \
       extract(epoch FROM now() - xact_start)::float8, left(query, 200) \
     FROM pg_stat_activity WHERE backend_xid IS NOT NULL \
     UNION ALL \
     SELECT NULL, database::text, owner::text, 'prepared', transaction::text::bigint, prepared, \
       extract(epoch FROM now() - prepared)::float8, gid \
     FROM pg_prepared_xacts \
     ORDER BY 5 LIMIT 1";

impl PgEventStore {
    /// Reports the log horizon and the transaction that holds it back, so a stalled
    /// reader can be explained ("pid 4242, idle in transaction for 3 minutes").
    pub async fn log_horizon(&self) -> Result<LogHorizon, Error> {
        let sql = format!(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
                    (SELECT max(transaction_id) FROM \"{}\".events)",
            self.config().schema
        );
        let row = sqlx::query(&sql).fetch_one(self.pool()).await.map_err(backend("reading the log horizon"))?;
        let d = |e| backend("decoding the log horizon")(e);
        let (horizon, next, highest): (i64, i64, Option<i64>) =
            (row.try_get(0).map_err(d)?, row.try_get(1).map_err(d)?, row.try_get(2).map_err(d)?);
        Ok(LogHorizon {
            horizon: horizon.unsigned_abs(),
            next_transaction: next.unsigned_abs(),
            highest_stored: highest.map(i64::unsigned_abs),
            oldest: self.oldest_transaction().await?,
        })
    }

    /// The oldest running (or prepared) transaction of the cluster, if any.
    pub async fn oldest_transaction(&self) -> Result<Option<HoldingTransaction>, Error> {
        let row = sqlx::query(OLDEST).fetch_optional(self.pool()).await.map_err(backend("reading pg_stat_activity"))?;
        let Some(row) = row else { return Ok(None) };
        let d = |e| backend("decoding pg_stat_activity")(e);
        let xid: i64 = row.try_get(4).map_err(d)?;
        let age: Option<f64> = row.try_get(6).map_err(d)?;
        Ok(Some(HoldingTransaction {
            pid: row.try_get(0).map_err(d)?,
            database: row.try_get(1).map_err(d)?,
            user: row.try_get(2).map_err(d)?,
            state: row.try_get(3).map_err(d)?,
            transaction_id: xid.unsigned_abs(),
            started_at: row.try_get(5).map_err(d)?,
            age: Duration::try_from_secs_f64(age.unwrap_or(0.0).max(0.0)).unwrap_or_default(),
            query: row.try_get(7).map_err(d)?,
        }))
    }

    /// The last version of each stream in the readable log (below the horizon), by stream
    /// id in byte order, after `after`, at most `limit` streams: what an audit compares a
    /// projection's seen versions with. It reads every event of the streams it returns.
    pub async fn stream_heads(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, StreamVersion)>, Error> {
        self.heads_of(None, after, limit).await
    }

    /// [`PgEventStore::stream_heads`] over the streams of one tenant, or of all.
    pub(crate) async fn heads_of(
        &self,
        tenant: Option<&str>,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, StreamVersion)>, Error> {
        let of_tenant = if tenant.is_some() { "AND tenant = $3" } else { "" };
        let sql = format!(
            "SELECT stream_id, max(stream_version) FROM \"{}\".events \
             WHERE stream_id COLLATE \"C\" > $1 COLLATE \"C\" {of_tenant} \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             GROUP BY stream_id ORDER BY stream_id COLLATE \"C\" LIMIT $2",
            self.config().schema
        );
        let mut query =
            sqlx::query(&sql).bind(after.map_or("", StreamId::as_str)).bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(tenant) = tenant {
            query = query.bind(tenant);
        }
        let rows = query.fetch_all(self.pool()).await.map_err(backend("reading stream heads"))?;
        let d = |e| backend("decoding stream heads")(e);
        let mut heads = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0).map_err(d)?;
            let version: i64 = row.try_get(1).map_err(d)?;
            let id = StreamId::new(id).map_err(Error::from)?;
            heads.push((id, StreamVersion(version.unsigned_abs())));
        }
        Ok(heads)
    }
}

impl tidemark::LogDiagnostics for PgEventStore {
    async fn held_back_by(&self) -> Option<String> {
        held_back_by(self, true).await
    }

    async fn stream_heads(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, StreamVersion)>, Error> {
        PgEventStore::stream_heads(self, after, limit).await
    }
}

/// A tenant's view is held back by the same horizon as the whole log, but is not told
/// whose transaction holds it (no process, user or statement: those may be another
/// tenant's); its stream heads are its own streams'.
impl tidemark::LogDiagnostics for PgTenantStore {
    async fn held_back_by(&self) -> Option<String> {
        held_back_by(self.unscoped(), false).await
    }

    async fn stream_heads(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, StreamVersion)>, Error> {
        self.unscoped().heads_of(Some(self.tenant()), after, limit).await
    }
}

/// What holds the log back, described with the holding transaction's process and
/// statement when `in_full`, by its id and age only otherwise.
async fn held_back_by(store: &PgEventStore, in_full: bool) -> Option<String> {
    let horizon = match store.log_horizon().await {
        Ok(h) => h,
        Err(e) => return Some(format!("cannot read the log horizon: {e}")),
    };
    if horizon.transaction_ids_regressed() {
        return Some("stored transaction ids are ahead of the server's (restored from a dump?)".to_owned());
    }
    let oldest = horizon.oldest?;
    (oldest.age.as_secs() >= 1).then(|| {
        if !in_full {
            return format!("transaction {} (open {:?})", oldest.transaction_id, oldest.age);
        }
        format!(
            "transaction {} (pid {}, {}, open {:?}): {}",
            oldest.transaction_id,
            oldest.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            oldest.state.as_deref().unwrap_or("?"),
            oldest.age,
            oldest.query.as_deref().unwrap_or("")
        )
    })
}

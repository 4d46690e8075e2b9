//! How far a reader's cursor is behind the readable log: what `relay status` reports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use tidemark::{Error, LogPosition};

use crate::error::backend;
use crate::row::signed;
use crate::store::PgEventStore;

/// The readable events after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Backlog {
    /// How many (at most the cap asked for).
    pub events: u64,
    /// False when there were more than the cap: `events` is the cap.
    pub exact: bool,
    /// When the oldest of them was recorded.
    pub oldest: Option<DateTime<Utc>>,
}

impl PgEventStore {
    /// Counts the events of the readable log (below the horizon) after `after`, up to
    /// `cap` of them, with the recording time of the first: one index range scan.
    pub async fn backlog(&self, after: LogPosition, cap: u64) -> Result<Backlog, Error> {
        let horizon = if self.config().gap_safe {
            "AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        } else {
            ""
        };
        let sql = format!(
            "SELECT count(*), min(recorded_at) FROM (SELECT recorded_at FROM \"{}\".events \
             WHERE (transaction_id, sequence) > ($1, $2) {horizon} \
             ORDER BY transaction_id, sequence LIMIT $3) AS after_cursor",
            self.config().schema
        );
        let row = sqlx::query(&sql)
            .bind(signed(after.transaction_id))
            .bind(signed(after.sequence))
            .bind(i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_one(self.pool())
            .await
            .map_err(backend("counting the events after a cursor"))?;
        let d = |e| backend("decoding the events after a cursor")(e);
        let count: i64 = row.try_get(0).map_err(d)?;
        let count = count.unsigned_abs();
        Ok(Backlog { events: count.min(cap), exact: count <= cap, oldest: row.try_get(1).map_err(d)? })
    }
}

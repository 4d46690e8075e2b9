//! Archiving deleted streams: their events move from `events` into `archived_events`.
//!
//! Only a stream that ends with a tombstone may be archived, and its tombstone stays in
//! `events`: every append statement still finds the stream deleted there, so no version
//! of it can be written again. Every read of events (a stream, the log, identities,
//! command outcomes) reads both tables, so archiving changes where an event is kept, not
//! what any reader sees; positions are kept as they were. The database itself refuses
//! any other removal (migration 1001).

use std::time::Duration;

use chrono::Utc;
use sqlx::{Postgres, Transaction};
use tidemark::{BackendError, Error, LogPosition, TOMBSTONE_EVENT_TYPE};

use crate::error::backend;
use crate::row::{signed, unsigned};
use crate::store::PgEventStore;

/// Default age of a tombstone before its stream is archived: 90 days.
pub const DEFAULT_ARCHIVE_AGE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Which deleted streams [`PgEventStore::archive`] moves, and how many per transaction.
#[derive(Debug, Clone)]
pub struct ArchivePolicy {
    older_than: Duration,
    relayed_only: bool,
    streams_per_transaction: usize,
}

impl Default for ArchivePolicy {
    fn default() -> Self {
        Self { older_than: DEFAULT_ARCHIVE_AGE, relayed_only: true, streams_per_transaction: 100 }
    }
}

impl ArchivePolicy {
    /// Archives streams whose tombstone was recorded longer ago than `age` (default
    /// [`DEFAULT_ARCHIVE_AGE`]; zero archives every deleted stream).
    pub fn older_than(mut self, age: Duration) -> Self {
        self.older_than = age;
        self
    }

    /// Also archives streams a relay has not published yet. By default (`true`) only
    /// streams whose every event is at or below every relay's checkpoint (the
    /// checkpoints named `relay:…`) are archived, and none while no relay has saved a
    /// checkpoint. Pass `false` only for a store that no relay reads.
    pub fn relayed_only(mut self, relayed_only: bool) -> Self {
        self.relayed_only = relayed_only;
        self
    }

    /// Most streams moved per transaction (default 100, at least 1).
    pub fn streams_per_transaction(mut self, streams: usize) -> Self {
        self.streams_per_transaction = streams.max(1);
        self
    }

    /// The age a tombstone must reach.
    pub fn age(&self) -> Duration {
        self.older_than
    }
}

/// What an archive run moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Deleted streams whose events were archived.
    pub streams: u64,
    /// Events moved into `archived_events` (tombstones stay in `events`).
    pub events: u64,
}

impl PgEventStore {
    /// Moves the events of deleted streams that `policy` selects into `archived_events`,
    /// a transaction per batch of streams, until none is left. A stream qualifies when it
    /// ends with a tombstone recorded before the policy's age, every one of its events is
    /// below the log's horizon (its transaction has ended, as has every older one) and,
    /// by default, at or below every relay's checkpoint. Archive runs take turns (an
    /// advisory lock per schema).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database fails or refuses the move; a refused batch is
    /// rolled back whole, so nothing is lost or half moved.
    pub async fn archive(&self, policy: &ArchivePolicy) -> Result<ArchiveReport, Error> {
        let age = chrono::Duration::from_std(policy.older_than).unwrap_or(chrono::Duration::MAX);
        let cutoff = Utc::now().checked_sub_signed(age).unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let mut report = ArchiveReport::default();
        loop {
            let mut tx = self.pool().begin().await.map_err(backend("archiving streams"))?;
            let (streams, events) = self.archive_batch(&mut tx, policy, cutoff).await?;
            tx.commit().await.map_err(backend("archiving streams"))?;
            report.streams += streams;
            report.events += events;
            if streams < policy.streams_per_transaction as u64 {
                tracing::info!(streams = report.streams, events = report.events, "archived deleted streams");
                return Ok(report);
            }
        }
    }

    async fn archive_batch(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        policy: &ArchivePolicy,
        cutoff: chrono::DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let s = format!("\"{}\"", self.config().schema);
        let fail = backend("archiving streams");
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("tidemark archive {s}"))
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        let bound = match policy.relayed_only {
            true => relay_bound(tx, &s).await?,
            false => Some(LogPosition::new(u64::MAX >> 1, u64::MAX >> 1)),
        };
        let Some(bound) = bound else { return Ok((0, 0)) };
        let streams: Vec<String> = sqlx::query_scalar(&candidates(&s))
            .bind(cutoff)
            .bind(signed(bound.transaction_id))
            .bind(signed(bound.sequence))
            .bind(i64::try_from(policy.streams_per_transaction).unwrap_or(i64::MAX))
            .fetch_all(&mut **tx)
            .await
            .map_err(backend("finding streams to archive"))?;
        if streams.is_empty() {
            return Ok((0, 0));
        }
        let copied = sqlx::query(&copy(&s))
            .bind(&streams)
            .execute(&mut **tx)
            .await
            .map_err(backend("copying events into the archive"))?;
        let removed = sqlx::query(&remove(&s))
            .bind(&streams)
            .execute(&mut **tx)
            .await
            .map_err(backend("removing archived events"))?;
        if copied.rows_affected() != removed.rows_affected() {
            let message = format!("copied {} events but removed {}", copied.rows_affected(), removed.rows_affected());
            return Err(Error::Backend(BackendError::new("archiving streams", false, message)));
        }
        Ok((streams.len() as u64, copied.rows_affected()))
    }
}

/// The lowest relay checkpoint, or `None` when no relay saved one.
async fn relay_bound(tx: &mut Transaction<'_, Postgres>, s: &str) -> Result<Option<LogPosition>, Error> {
    let sql = format!(
        "SELECT transaction_id, sequence FROM {s}.checkpoints WHERE name LIKE 'relay:%' \
         ORDER BY transaction_id, sequence LIMIT 1"
    );
    let row: Option<(i64, i64)> =
        sqlx::query_as(&sql).fetch_optional(&mut **tx).await.map_err(backend("reading the relay checkpoints"))?;
    Ok(row.map(|(x, p)| LogPosition::new(unsigned(x), unsigned(p))))
}

/// Deleted streams to archive: tombstone older than `$1`, every event at or below the
/// bound `($2, $3)` and below the horizon, something left to move; oldest first, `$4` at most.
fn candidates(s: &str) -> String {
    format!(
        "SELECT t.stream_id FROM {s}.events t \
         WHERE t.event_type = '{TOMBSTONE_EVENT_TYPE}' AND t.recorded_at < $1 \
           AND EXISTS (SELECT 1 FROM {s}.events e WHERE e.stream_id = t.stream_id AND e.stream_version < t.stream_version) \
           AND NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.stream_id = t.stream_id \
             AND ((e.transaction_id, e.sequence) > ($2, $3) \
               OR e.transaction_id >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint)) \
         ORDER BY t.recorded_at LIMIT $4"
    )
}

/// Copies the events of the streams `$1` (all but their tombstones) into the archive.
fn copy(s: &str) -> String {
    let columns = "sequence, transaction_id, event_id, stream_id, stream_version, event_type, schema_version, \
                   payload, correlation_id, causation_id, metadata, recorded_at";
    format!(
        "INSERT INTO {s}.archived_events ({columns}) SELECT {columns} FROM {s}.events \
         WHERE stream_id = ANY($1) AND event_type <> '{TOMBSTONE_EVENT_TYPE}'"
    )
}

/// Removes the copied events; the database checks each row against its copy.
fn remove(s: &str) -> String {
    format!("DELETE FROM {s}.events WHERE stream_id = ANY($1) AND event_type <> '{TOMBSTONE_EVENT_TYPE}'")
}

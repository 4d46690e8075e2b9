//! Following the global log: pages that say whether more is held back behind the
//! horizon, and a handle that waits for new events without a query per wake-up.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::Row;
use tidemark::{Error, LogPosition, RecordedEvent};
use tokio::sync::watch;

use crate::error::backend;
use crate::row::{recorded_event, signed};
use crate::store::PgEventStore;
use crate::tenant::PgTenantStore;

/// A page of the global log read by [`PgEventStore::read_tail`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogTail {
    /// The events after the cursor, in log order, all below the horizon.
    pub events: Vec<RecordedEvent>,
    /// Whether committed events after the cursor exist that the page could not include
    /// yet, because a transaction older than theirs is still running. They become
    /// readable when it ends, which may send no wake-up (it need not be an append): a
    /// follower that sees this should read again soon rather than wait for one.
    pub held_back: bool,
}

/// Wake-ups for a follower of the log (see [`PgEventStore::watch_log`]).
///
/// Call [`mark`](Self::mark) right before each read: a wake-up after it means events
/// the read may not have seen.
#[derive(Debug)]
pub struct LogWatch {
    woken: watch::Receiver<u64>,
    poll: Duration,
}

impl LogWatch {
    /// Forgets the wake-ups received so far.
    pub fn mark(&mut self) {
        self.woken.borrow_and_update();
    }

    /// Whether a wake-up arrived since the last [`mark`](Self::mark).
    pub fn woken(&self) -> bool {
        self.woken.has_changed().unwrap_or(true)
    }

    /// Waits for a wake-up since the last mark, at most `timeout` and never longer than
    /// the store's poll interval (wake-ups can be lost, a reconnect of the listener for
    /// one). Returns whether it was woken.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        let timeout = timeout.min(self.poll);
        match tokio::time::timeout(timeout, self.woken.changed()).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => {
                // The store is gone; only polling is left.
                tokio::time::sleep(timeout).await;
                false
            }
            Err(_) => false,
        }
    }
}

impl PgEventStore {
    /// Reads up to `limit` events after `after` (like `EventStore::read_log`), and
    /// whether more are held back behind the horizon, in one statement.
    pub async fn read_tail(&self, after: LogPosition, limit: usize) -> Result<LogTail, Error> {
        let rows = sqlx::query(&self.sql().read_tail)
            .bind(signed(after.transaction_id))
            .bind(signed(after.sequence))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(backend("reading the log"))?;
        tail_of(&rows)
    }

    /// Wake-ups sent when events are appended, through this store in this process or
    /// (by NOTIFY) in others; starts listening on first use.
    pub fn watch_log(&self) -> LogWatch {
        let mut woken = self.wake().subscribe(self.pool(), &self.sql().channel);
        woken.borrow_and_update();
        LogWatch { woken, poll: self.config().poll_interval }
    }
}

impl PgTenantStore {
    /// [`PgEventStore::read_tail`] over the tenant's events only. `held_back` still
    /// speaks of the whole log: it may say events are held back when only another
    /// tenant's are, which costs a follower an early read, never a skipped event.
    pub async fn read_tail(&self, after: LogPosition, limit: usize) -> Result<LogTail, Error> {
        let rows = sqlx::query(&self.statements().read_tail)
            .bind(signed(after.transaction_id))
            .bind(signed(after.sequence))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(self.tenant())
            .fetch_all(self.unscoped().pool())
            .await
            .map_err(backend("reading a tenant's log"))?;
        tail_of(&rows)
    }

    /// Wake-ups on every append to the store (see [`PgEventStore::watch_log`]): another
    /// tenant's append wakes the follower too, whose next page is then empty.
    pub fn watch_log(&self) -> LogWatch {
        self.unscoped().watch_log()
    }
}

/// A page of the log from the rows of a `read_tail` statement.
fn tail_of(rows: &[PgRow]) -> Result<LogTail, Error> {
    let decode = |e| backend("decoding the log")(e);
    let mut tail = LogTail::default();
    for row in rows {
        tail.held_back = row.try_get("held_back").map_err(decode)?;
        if row.try_get::<Option<i64>, _>(0).map_err(decode)?.is_some() {
            tail.events.push(recorded_event(row)?);
        }
    }
    Ok(tail)
}

//! Connections kept warm between the store's statements.
//!
//! sqlx pings every connection it takes back into its pool (a `Sync` round trip in a task
//! of its own), whatever the pool's options say. The store's hot statements (appends,
//! stream loads) instead hand a connection that ended a statement cleanly to the next one
//! directly. Only a statement that completed gives its connection back here: one that
//! failed or whose caller gave up drops it into the pool as usual, where the ping flushes
//! whatever the connection was left in the middle of.
//!
//! At most half of the pool's connections are kept, so the pool's other users always have
//! the rest, and a connection idle for [`IDLE`] goes back to the pool. Once the pool is
//! closed, the kept connections are closed within [`IDLE`] and none is handed out again.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::time::Instant;

/// How long a kept connection waits for the next statement before it goes back to the pool.
pub(crate) const IDLE: Duration = Duration::from_millis(100);

/// The connections kept between statements.
#[derive(Debug)]
pub(crate) struct WarmConnections {
    pool: PgPool,
    kept: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
    most: usize,
}

impl WarmConnections {
    /// Keeps up to half of `pool`'s connections; a task hands back idle ones and ends
    /// with the returned value.
    pub(crate) fn start(pool: &PgPool) -> Arc<Self> {
        let most = usize::try_from(pool.options().get_max_connections() / 2).unwrap_or(0);
        let warm = Arc::new(Self { pool: pool.clone(), kept: Mutex::new(Vec::new()), most });
        if most > 0 {
            tokio::spawn(hand_back_idle(Arc::downgrade(&warm)));
        }
        warm
    }

    /// A kept connection, or one from the pool. Once the pool is closed, nothing: the
    /// kept connections are closed too.
    pub(crate) async fn take(&self) -> Result<Warm<'_>, sqlx::Error> {
        if self.pool.is_closed() {
            drop(std::mem::take(&mut *self.lock()));
            return Err(sqlx::Error::PoolClosed);
        }
        let kept = self.lock().pop().map(|(conn, _)| conn);
        let conn = match kept {
            Some(conn) => conn,
            None => self.pool.acquire().await?,
        };
        Ok(Warm { conn, home: self })
    }

    fn keep(&self, conn: PoolConnection<Postgres>) {
        if self.pool.is_closed() {
            return;
        }
        let mut kept = self.lock();
        if kept.len() < self.most {
            kept.push((conn, Instant::now()));
        }
    }

    /// Hands back to the pool the connections idle since `before` (all of them once the
    /// pool is closing).
    fn expire(&self, before: Instant) {
        let closing = self.pool.is_closed();
        let expired: Vec<_> = {
            let mut kept = self.lock();
            let (old, fresh) = std::mem::take(&mut *kept).into_iter().partition(|(_, at)| closing || *at <= before);
            *kept = fresh;
            old
        };
        drop(expired);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PoolConnection<Postgres>, Instant)>> {
        // A panic while holding the lock cannot leave the list inconsistent: take it anyway.
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for WarmConnections {
    fn drop(&mut self) {
        let kept = std::mem::take(&mut *self.lock());
        if tokio::runtime::Handle::try_current().is_ok() {
            return drop(kept);
        }
        // Outside a runtime the pool cannot take them back (it spawns a task to): close
        // them apart from it instead.
        for (conn, _) in kept {
            drop(conn.detach());
        }
    }
}

async fn hand_back_idle(warm: Weak<WarmConnections>) {
    let mut tick = tokio::time::interval(IDLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(warm) = warm.upgrade() else { return };
        if let Some(before) = Instant::now().checked_sub(IDLE) {
            warm.expire(before);
        }
    }
}

/// A connection for one statement (or a few in a row). [`Warm::keep`] once they
/// completed; dropped otherwise, it goes back to the pool with sqlx's ping.
pub(crate) struct Warm<'a> {
    conn: PoolConnection<Postgres>,
    home: &'a WarmConnections,
}

impl Warm<'_> {
    /// The statements completed: keep the connection for the next ones.
    pub(crate) fn keep(self) {
        let Warm { conn, home } = self;
        home.keep(conn);
    }
}

impl Deref for Warm<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Warm<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

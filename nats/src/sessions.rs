//! The PostgreSQL sessions of a relay's name: the leader holding its lock and the
//! standbys asking for it, told apart by the application name of their lock connections.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::leader::application_name;

/// The session that holds a relay's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderSession {
    pub pid: i32,
    pub client: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl fmt::Display for LeaderSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(client) = &self.client {
            write!(f, " from {client}")?;
        }
        if let Some(since) = self.since {
            write!(f, ", connected since {}", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;
        }
        Ok(())
    }
}

/// The leader, if any, and how many other sessions of the relay's name stand by.
pub(crate) async fn relay_sessions(pool: &PgPool, key: i64) -> Result<(Option<LeaderSession>, u32), sqlx::Error> {
    // A bigint advisory key shows in pg_locks as classid (high half), objid (low half)
    // and objsubid 1.
    let leader = sqlx::query(
        "SELECT a.pid, host(a.client_addr), a.backend_start FROM pg_locks l \
         JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid::bigint = (($1 >> 32) & 4294967295) AND l.objid::bigint = ($1 & 4294967295) \
         LIMIT 1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    let leader = match leader {
        Some(row) => Some(LeaderSession { pid: row.try_get(0)?, client: row.try_get(1)?, since: row.try_get(2)? }),
        None => None,
    };
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
    )
    .bind(application_name(key))
    .fetch_one(pool)
    .await?;
    let standbys = u32::try_from(sessions).unwrap_or(u32::MAX).saturating_sub(u32::from(leader.is_some()));
    Ok((leader, standbys))
}

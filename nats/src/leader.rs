//! Leader election through a PostgreSQL session advisory lock.
//!
//! Each relay process keeps one dedicated connection (outside the store's pool) and asks
//! `pg_try_advisory_lock(key)` on it. The session that gets the lock is the leader until
//! its connection ends: a clean shutdown, a lost connection, or the process being killed
//! (the kernel closes its socket and PostgreSQL ends the session, releasing the lock).
//! Standbys ask again every `standby_poll`, on a connection they keep open. Every such
//! connection carries the application name [`application_name`], so the sessions of a
//! relay's leader and standbys can be told apart in `pg_stat_activity` (`relay status`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::error::RelayError;

/// How long a liveness check of the lock connection may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key of a relay: the FNV-1a 64-bit hash of
/// `tidemark-relay`, the store schema and the relay name, separated by NUL bytes, as a
/// signed integer. Relays of the same name on different schemas do not contend.
pub(crate) fn lock_key(schema: &str, name: &str) -> i64 {
    let text = format!("tidemark-relay\0{schema}\0{name}");
    let hash =
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The application name of the sessions a relay asks for its lock on: `tidemark-relay`
/// and the lock key in hex, within PostgreSQL's 63 bytes.
pub(crate) fn application_name(key: i64) -> String {
    format!("tidemark-relay {key:016x}")
}

/// A relay that wants the leadership, with the connection it asks on.
#[derive(Debug)]
pub(crate) struct Candidate {
    options: Arc<PgConnectOptions>,
    key: i64,
    conn: Option<PgConnection>,
}

impl Candidate {
    pub(crate) fn new(options: &PgConnectOptions, key: i64) -> Self {
        let options = Arc::new(options.clone().application_name(&application_name(key)));
        Self { options, key, conn: None }
    }

    /// Asks for the lock once; `None` when another session holds it. On an error the
    /// connection is dropped and the next attempt connects anew.
    pub(crate) async fn try_lead(&mut self) -> Result<Option<Leadership>, RelayError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => PgConnection::connect_with(&self.options).await.map_err(RelayError::Lock)?,
        };
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut conn)
            .await
            .map_err(RelayError::Lock)?;
        if locked {
            Ok(Some(Leadership { conn, key: self.key }))
        } else {
            self.conn = Some(conn);
            Ok(None)
        }
    }
}

/// The held leader lock, on its dedicated connection.
#[derive(Debug)]
pub(crate) struct Leadership {
    conn: PgConnection,
    key: i64,
}

impl Leadership {
    /// Checks that the lock's session is alive (a session lock lasts as long as it).
    pub(crate) async fn check(&mut self) -> Result<(), RelayError> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.conn.ping()).await {
            Ok(result) => result.map_err(RelayError::Lock),
            Err(_) => Err(RelayError::LockUnresponsive(CHECK_TIMEOUT)),
        }
    }

    /// Releases the lock and closes the connection (best effort: closing the session
    /// releases the lock anyway).
    pub(crate) async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(self.key).execute(&mut self.conn).await;
        if let Err(error) = unlocked {
            tracing::debug!(%error, "unlocking the relay leader lock failed; closing its connection instead");
        }
        let _ = self.conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_schema_and_name_and_are_stable() {
        assert_eq!(lock_key("tidemark", "main"), lock_key("tidemark", "main"));
        assert_ne!(lock_key("tidemark", "main"), lock_key("tidemark", "other"));
        assert_ne!(lock_key("tidemark", "main"), lock_key("other", "main"));
        assert_ne!(lock_key("a", "bc"), lock_key("ab", "c"));
    }
}

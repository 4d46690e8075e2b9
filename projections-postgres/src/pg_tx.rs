//! A read-model transaction on PostgreSQL, on a pooled connection with its own `BEGIN` and
//! `COMMIT`. sqlx's `Transaction` counts a transaction as begun only once its `BEGIN`
//! statement has returned: a batch abandoned while that statement waits for its partition
//! lock (`BEGIN` and the locks go as one query) would leave its session in the pool, inside
//! the transaction and holding the lock once granted, for whoever takes the connection
//! next. Here the transaction counts as open from the moment `BEGIN` is sent.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Executor, PgConnection, Postgres};

use tidemark_projections::Result;

use crate::error::database;

/// The savepoint a batch's transaction returns to when it is undone.
pub(crate) const SAVEPOINT: &str = "tidemark_batch";

/// Ends a batch's transaction that set [`SAVEPOINT`].
const RELEASE_AND_COMMIT: &str = "RELEASE SAVEPOINT tidemark_batch; COMMIT";

/// A batch's transaction on PostgreSQL. Projections run their statements on
/// [`conn`](Self::conn); the runtime records progress in the same transaction.
///
/// Dropped without a commit, it is rolled back: its connection is closed rather than
/// returned to the pool, and the server ends the transaction with the session.
#[derive(Debug)]
pub struct PgTx {
    conn: PoolConnection<Postgres>,
    /// Whether `BEGIN` went out and no `COMMIT` came back.
    open: bool,
    schema: Arc<str>,
    /// The projection and partition whose batch locks the transaction holds.
    locked: Option<(String, u32)>,
    /// Whether the batch's savepoint was set when it began.
    savepoint: bool,
}

impl PgTx {
    /// Opens a transaction on `conn` with `begin`, a simple query that starts with `BEGIN`.
    pub(crate) async fn begin(conn: PoolConnection<Postgres>, schema: Arc<str>, begin: &str) -> Result<Self> {
        // Marked open before the query goes out: if it fails half way, or the caller
        // stops waiting for it, dropping the transaction closes the connection.
        let mut tx = Self { conn, open: true, schema, locked: None, savepoint: false };
        tx.conn.execute(begin).await.map_err(database("beginning a projection transaction"))?;
        Ok(tx)
    }

    /// Commits. A transaction the server has failed already (a statement's error that a
    /// projection did not pass on) is not committed, and that is an error here: the
    /// server would answer its `COMMIT` with a rollback and no error, so a statement that
    /// fails in a failed transaction goes first, in the same round trip, and the `COMMIT`
    /// after it does not run.
    pub(crate) async fn commit(mut self) -> Result<()> {
        // With the batch's savepoint set, releasing it is that statement: it is refused in a
        // failed transaction like any other, and it needs no plan.
        let sql = if self.savepoint { RELEASE_AND_COMMIT } else { "SELECT 1; COMMIT" };
        self.conn.execute(sql).await.map_err(database("committing a projection batch"))?;
        self.open = false;
        Ok(())
    }

    /// Runs `statement`, then releases the batch's savepoint and commits, in one round
    /// trip (one simple query). When a statement fails, none after it runs: a failure of
    /// `statement` leaves the transaction open and failed, to return to its savepoint, and
    /// comes back with it.
    pub(crate) async fn commit_after(mut self, statement: &str) -> std::result::Result<(), (Self, sqlx::Error)> {
        let sql =
            if self.savepoint { format!("{statement}; {RELEASE_AND_COMMIT}") } else { format!("{statement}; COMMIT") };
        match self.conn.execute(sql.as_str()).await {
            Ok(_) => {
                self.open = false;
                Ok(())
            }
            Err(e) => Err((self, e)),
        }
    }

    /// The connection the transaction runs on, for `sqlx::query(..).execute(tx.conn())`.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The schema of the store, where the document table lives.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub(crate) fn holds(&self, projection: &str, partition: u32) -> bool {
        self.locked.as_ref().is_some_and(|(p, n)| p == projection && *n == partition)
    }

    pub(crate) fn saved(&mut self) {
        self.savepoint = true;
    }

    pub(crate) fn has_savepoint(&self) -> bool {
        self.savepoint
    }

    pub(crate) fn locked(&mut self, projection: &str, partition: u32) {
        self.locked = Some((projection.to_owned(), partition));
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

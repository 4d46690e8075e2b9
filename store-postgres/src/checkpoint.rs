//! Named cursors into the global log, saved in the store's schema.

use sqlx::{PgConnection, PgExecutor, Row};
use tidemark::{Error, EventId, LogPosition, RecordedEvent};

use crate::error::backend;
use crate::row::{recorded_event, signed, unsigned};
use crate::store::PgEventStore;

impl PgEventStore {
    /// The saved cursor of `name`, or `LogPosition::START` when none is saved.
    pub async fn load_checkpoint(&self, name: &str) -> Result<LogPosition, Error> {
        let sql =
            format!("SELECT transaction_id, sequence FROM \"{}\".checkpoints WHERE name = $1", self.config().schema);
        let row =
            sqlx::query(&sql).bind(name).fetch_optional(self.pool()).await.map_err(backend("loading a checkpoint"))?;
        let Some(row) = row else { return Ok(LogPosition::START) };
        let xid: i64 = row.try_get(0).map_err(backend("decoding a checkpoint"))?;
        let sequence: i64 = row.try_get(1).map_err(backend("decoding a checkpoint"))?;
        Ok(LogPosition::new(unsigned(xid), unsigned(sequence)))
    }

    /// Saves the cursor of `name` through the store's pool.
    pub async fn save_checkpoint(&self, name: &str, position: LogPosition) -> Result<(), Error> {
        let mut conn = self.pool().acquire().await.map_err(backend("saving a checkpoint"))?;
        self.save_checkpoint_in(&mut conn, name, position).await
    }

    /// Saves the cursor of `name` like [`save_checkpoint`](Self::save_checkpoint), but its
    /// commit does not wait for the WAL flush (`synchronous_commit` off for this statement
    /// only): a database crash can take back the saves of the last few hundred
    /// milliseconds. For readers that may re-read after a crash, such as the relay (the
    /// broker drops the duplicates it republishes within its window, consumers skip the
    /// rest); it keeps an fsync out of the way of the appends that share the WAL.
    pub async fn save_checkpoint_relaxed(&self, name: &str, position: LogPosition) -> Result<(), Error> {
        self.save_forward(self.pool(), name, position, true).await
    }

    /// Saves the cursor of `name` on the given connection, typically inside the
    /// transaction that applied the events up to it, so both commit or neither does.
    /// A cursor never moves backwards: saving an older position leaves the newer one.
    pub async fn save_checkpoint_in(
        &self,
        conn: &mut PgConnection,
        name: &str,
        position: LogPosition,
    ) -> Result<(), Error> {
        self.save_forward(conn, name, position, false).await
    }

    /// The forward-only save, durable or `relaxed`.
    async fn save_forward<'e, E>(
        &self,
        executor: E,
        name: &str,
        position: LogPosition,
        relaxed: bool,
    ) -> Result<(), Error>
    where
        E: PgExecutor<'e>,
    {
        // `set_config(…, true)` lasts until the end of the statement's own transaction,
        // which is when the commit reads the setting.
        let source = if relaxed {
            "SELECT $1, $2, $3 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed"
        } else {
            "VALUES ($1, $2, $3)"
        };
        let sql = format!(
            "INSERT INTO \"{}\".checkpoints AS c (name, transaction_id, sequence) {source} \
             ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
               sequence = EXCLUDED.sequence, updated_at = now() \
             WHERE (c.transaction_id, c.sequence) < (EXCLUDED.transaction_id, EXCLUDED.sequence)",
            self.config().schema
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(signed(position.transaction_id))
            .bind(signed(position.sequence))
            .execute(executor)
            .await
            .map_err(backend("saving a checkpoint"))?;
        Ok(())
    }

    /// Sets the cursor of `name` to `position`, forwards or backwards (rewinding a reader
    /// on purpose; ordinary progress uses `save_checkpoint`, which never moves back).
    pub async fn set_checkpoint(&self, name: &str, position: LogPosition) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO \"{}\".checkpoints (name, transaction_id, sequence) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
               sequence = EXCLUDED.sequence, updated_at = now()",
            self.config().schema
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(signed(position.transaction_id))
            .bind(signed(position.sequence))
            .execute(self.pool())
            .await
            .map_err(backend("setting a checkpoint"))?;
        Ok(())
    }

    /// Removes the cursor of `name`, so its reader starts from the beginning.
    pub async fn reset_checkpoint(&self, name: &str) -> Result<(), Error> {
        let sql = format!("DELETE FROM \"{}\".checkpoints WHERE name = $1", self.config().schema);
        sqlx::query(&sql).bind(name).execute(self.pool()).await.map_err(backend("resetting a checkpoint"))?;
        Ok(())
    }

    /// One stored event by id, for consumers of thin notifications that need the payload.
    pub async fn read_event(&self, id: EventId) -> Result<Option<RecordedEvent>, Error> {
        let row = sqlx::query(&self.sql().read_event)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await
            .map_err(backend("reading an event by id"))?;
        row.as_ref().map(recorded_event).transpose()
    }
}

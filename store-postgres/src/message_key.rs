//! The secret messages published from this store are signed with (migration 0008).

use tidemark::Error;

use crate::error::backend;
use crate::store::PgEventStore;

impl PgEventStore {
    /// The secret the relay signs the messages it publishes with, made by the store's
    /// migrations from PostgreSQL's strong random source (at least 32 bytes). Whoever can
    /// read it can sign messages that a projection runner takes in without checking them
    /// against the store; keep it out of logs.
    pub async fn message_secret(&self) -> Result<Vec<u8>, Error> {
        let sql = format!("SELECT secret FROM \"{}\".message_key WHERE id = 1", self.config().schema);
        sqlx::query_scalar(&sql).fetch_one(self.pool()).await.map_err(backend("reading the message key"))
    }
}

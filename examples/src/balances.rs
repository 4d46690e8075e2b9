//! A projection into a SQL table of its own: one row per account.

// ANCHOR: projection
use tidemark::{Envelope, EventCodec, RegistryError, StreamId};
use tidemark_projections::{ApplyError, Projection};
use tidemark_projections_postgres::{PgReadModels, PgTx};

use crate::account::AccountEvent;

/// `balances(account, owner, cents)`, kept by the projection named "balances".
#[derive(Debug)]
pub struct Balances {
    codec: EventCodec<AccountEvent>,
    version: u32,
}

impl Balances {
    /// The projection at version 1.
    pub fn new() -> Result<Self, RegistryError> {
        Ok(Self { codec: EventCodec::without_upcasters()?, version: 1 })
    }
}

impl Projection<PgReadModels> for Balances {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "balances"
    }

    // Raise it when the table or the code changes: the runner rebuilds the table at start.
    fn version(&self) -> u32 {
        self.version
    }

    fn codec(&self) -> &EventCodec<AccountEvent> {
        &self.codec
    }

    // Runs once per version, in the transaction that records it. Unqualified names land
    // in the projection's own schema, which comes first on the search_path.
    async fn setup(&self, tx: &mut PgTx) -> Result<(), ApplyError> {
        sqlx::query("CREATE TABLE balances (account text PRIMARY KEY, owner text NOT NULL, cents bigint NOT NULL)")
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    // Runs in the batch's transaction, which also records the projection's progress.
    async fn apply(&self, tx: &mut PgTx, event: &Envelope<AccountEvent>) -> Result<(), ApplyError> {
        let account = event.stream_id.as_str();
        let statement = match &event.event {
            AccountEvent::Opened(e) => sqlx::query("INSERT INTO balances (account, owner, cents) VALUES ($1, $2, 0)")
                .bind(account)
                .bind(&e.owner),
            AccountEvent::Deposited(e) => {
                sqlx::query("UPDATE balances SET cents = cents + $2 WHERE account = $1").bind(account).bind(e.cents)
            }
            AccountEvent::Withdrawn(e) => {
                sqlx::query("UPDATE balances SET cents = cents - $2 WHERE account = $1").bind(account).bind(e.cents)
            }
        };
        statement.execute(tx.conn()).await?;
        Ok(())
    }
}
// ANCHOR_END: projection

impl Balances {
    /// The same projection at another version (the rebuild example raises it).
    pub fn at_version(self, version: u32) -> Self {
        Self { version, ..self }
    }
}

// ANCHOR: query
/// An account's balance in cents, read from the projection's table.
pub async fn balance(read_models: &PgReadModels, account: &StreamId) -> Result<Option<i64>, sqlx::Error> {
    let schema = read_models.projection_schema("balances");
    sqlx::query_scalar(&format!("SELECT cents FROM \"{schema}\".balances WHERE account = $1"))
        .bind(account.as_str())
        .fetch_optional(read_models.pool())
        .await
}
// ANCHOR_END: query

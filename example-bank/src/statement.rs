//! The statements: one row per movement with the running balance, in a table of the
//! projection's own.

use tidemark::{Envelope, EventCodec, RegistryError, StreamId};
use tidemark_projections::{ApplyError, Projection};
use tidemark_projections_postgres::{PgReadModels, PgTx};

use crate::account::AccountEvent;

/// The projection's name; its table lives in the schema `<store schema>_statements`.
pub const NAME: &str = "statements";

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Line {
    /// The event's version in the account's stream.
    pub version: i64,
    /// `opened`, `deposit` or `withdrawal`.
    pub kind: String,
    /// The amount moved, in cents (negative for a withdrawal).
    pub cents: i64,
    /// The balance after it, in cents.
    pub balance: i64,
    /// What for.
    pub memo: String,
}

/// Keeps `statement_lines`.
#[derive(Debug)]
pub struct Statements {
    codec: EventCodec<AccountEvent>,
}

impl Statements {
    /// The projection.
    pub fn new() -> Result<Self, RegistryError> {
        Ok(Self { codec: EventCodec::without_upcasters()? })
    }
}

const CREATE: &str = "CREATE TABLE statement_lines ( \
    account text NOT NULL, version bigint NOT NULL, kind text NOT NULL, cents bigint NOT NULL, \
    balance bigint NOT NULL, memo text NOT NULL, PRIMARY KEY (account, version))";

const INSERT: &str = "INSERT INTO statement_lines (account, version, kind, cents, balance, memo) \
    SELECT $1, $2, $3, $4, $4 + COALESCE((SELECT balance FROM statement_lines WHERE account = $1 \
      ORDER BY version DESC LIMIT 1), 0), $5";

impl Projection<PgReadModels> for Statements {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        NAME
    }

    fn codec(&self) -> &EventCodec<AccountEvent> {
        &self.codec
    }

    async fn setup(&self, tx: &mut PgTx) -> Result<(), ApplyError> {
        sqlx::query(CREATE).execute(tx.conn()).await?;
        Ok(())
    }

    async fn apply(&self, tx: &mut PgTx, event: &Envelope<AccountEvent>) -> Result<(), ApplyError> {
        let (kind, cents, memo) = match &event.event {
            AccountEvent::Opened(e) => ("opened", 0, e.owner.as_str()),
            AccountEvent::Deposited(e) => ("deposit", e.cents, e.memo.as_str()),
            AccountEvent::Withdrawn(e) => ("withdrawal", -e.cents, e.memo.as_str()),
        };
        let version = i64::try_from(event.stream_version.0)?;
        sqlx::query(INSERT)
            .bind(event.stream_id.as_str())
            .bind(version)
            .bind(kind)
            .bind(cents)
            .bind(memo)
            .execute(tx.conn())
            .await?;
        Ok(())
    }
}

/// The lines of `account`'s statement, oldest first.
pub(crate) async fn lines(read_models: &PgReadModels, account: &StreamId) -> Result<Vec<Line>, sqlx::Error> {
    let schema = read_models.projection_schema(NAME);
    let sql = format!(
        "SELECT version, kind, cents, balance, memo FROM \"{schema}\".statement_lines \
         WHERE account = $1 ORDER BY version"
    );
    sqlx::query_as(&sql).bind(account.as_str()).fetch_all(read_models.pool()).await
}

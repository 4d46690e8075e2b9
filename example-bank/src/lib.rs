//! A bank account on tidemark: the PostgreSQL store and one projection, no NATS.
//! See README.md.

mod account;
mod bank;
mod statement;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, Deposited, Opened, Withdrawn};
pub use bank::Bank;
pub use statement::{Line, Statements, NAME as STATEMENTS};

/// Why the bank could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The account refused the command; nothing was written.
    #[error("refused: {0}")]
    Refused(AccountError),
    /// The command could not be carried out (the store failed, or kept conflicting).
    #[error(transparent)]
    Command(tidemark::CommandError<AccountError>),
    /// Connecting or migrating failed.
    #[error(transparent)]
    Setup(#[from] tidemark_postgres::SetupError),
    /// The statements projection failed, or did not catch up in time.
    #[error(transparent)]
    Projection(#[from] tidemark_projections::ProjectionError),
    /// Reading a statement failed.
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    /// The event types are declared twice (a bug in this crate).
    #[error(transparent)]
    Registry(#[from] tidemark::RegistryError),
    /// An account id that is not a valid stream id.
    #[error(transparent)]
    InvalidId(#[from] tidemark::InvalidStreamId),
}

//! Errors of setting the store up, and mapping of database errors.

use tidemark::BackendError;

/// Why the store could not be set up or migrated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The configured schema name breaks the rules on `PgStoreConfig::schema`.
    #[error("invalid schema name {0:?}: use lowercase ASCII letters, digits and '_', starting with a letter or '_', at most 48 bytes")]
    InvalidSchemaName(String),
    /// The store was created outside a tokio runtime.
    #[error("the PostgreSQL store needs a tokio runtime to run its wake-up tasks")]
    NoRuntime,
    /// Connecting to or querying the database failed.
    #[error("database error while setting up the store: {0}")]
    Database(#[from] sqlx::Error),
    /// A tenant name breaks the rules on `PgEventStore::for_tenant`.
    #[error("invalid tenant {0:?}: use 1 to 64 ASCII letters, digits, '_', '-' or '.'")]
    InvalidTenant(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// SQLSTATEs after which the same statement may succeed later.
fn retryable_code(code: &str) -> bool {
    code.starts_with("08") // connection exceptions
        || matches!(code, "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03" | "55P03")
}

/// Whether a database error may go away if the operation is tried again later: lost
/// or refused connections (I/O, TLS, protocol, pool), server shutdown or start-up, too
/// many connections, serialisation failures and deadlocks. Judged by error kind and
/// SQLSTATE, never by message text.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| retryable_code(&c)),
        _ => false,
    }
}

/// Wraps a database error as a backend failure.
pub(crate) fn backend(context: &'static str) -> impl FnOnce(sqlx::Error) -> tidemark::Error {
    move |error| tidemark::Error::Backend(BackendError::new(context, is_transient(&error), error))
}

/// The name of the unique constraint a database error violated, if it is a unique violation.
pub(crate) fn violated_unique(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint(),
        _ => None,
    }
}

/// Whether a database error is the events' trigger refusing an event whose tenant is not
/// its stream's (SQLSTATE `TM002`, raised by migration 1004).
pub(crate) fn refuses_tenant(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("TM002"))
}

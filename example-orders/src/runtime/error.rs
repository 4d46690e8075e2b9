//! Why the app, or one of its processes, could not start.

use tidemark_projections::ProjectionError;

use crate::domain::ImportError;

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An event codec's upcasters are inconsistent.
    #[error(transparent)]
    Codec(#[from] tidemark::RegistryError),
    /// A projection runner or the in-process bus could not be created.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The v1 fixture could not be imported.
    #[error("importing the v1 fixture: {0}")]
    Import(#[from] ImportError),
    /// The PostgreSQL store could not be set up or migrated.
    #[error("PostgreSQL: {0}")]
    Store(#[from] tidemark_postgres::SetupError),
    /// A query of the start-up checks failed.
    #[error("PostgreSQL: {context}: {source}")]
    Database {
        /// What was being done.
        context: &'static str,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },
    /// The schema lacks migrations of the store or of the read models (none applied, or
    /// only some).
    #[error(
        "schema {schema:?} is not migrated (pending migrations: {}): run `orders migrate` first, with the same \
         DATABASE_URL and --schema",
        versions(pending)
    )]
    NotMigrated {
        /// The store's schema.
        schema: String,
        /// The versions not applied yet, in order.
        pending: Vec<i64>,
    },
    /// NATS could not be reached, or refused the credentials or the TLS handshake.
    #[error(transparent)]
    Nats(#[from] tidemark_nats::NatsConnectError),
    /// The registry of personal fields is invalid.
    #[error(transparent)]
    Personal(#[from] tidemark::PersonalError),
    /// The subject prefix or partition count is invalid.
    #[error(transparent)]
    Subjects(#[from] tidemark_nats::SubjectError),
    /// The relay's configuration is invalid.
    #[error(transparent)]
    Relay(#[from] tidemark_nats::RelayError),
    /// The key of the store's messages could not be read.
    #[error(transparent)]
    MessageKey(#[from] tidemark_nats::KeyError),
    /// The JetStream stream could not be created or updated.
    #[error(transparent)]
    Stream(#[from] tidemark_nats::StreamError),
    /// The order summaries' KV bucket could not be opened or created, or its projection
    /// could not be built.
    #[error(transparent)]
    Kv(#[from] tidemark_nats::KvError),
    /// A relay was asked for on the PostgreSQL feed, whose consumers read the store's log
    /// themselves.
    #[error("the PostgreSQL feed (--feed postgres) needs no relay: the consumers read the store's log themselves")]
    NoRelay,
    /// `projections run --only` names no consumer it runs.
    #[error("no consumer named {name:?} runs in `projections run`; choose one of {choices}")]
    UnknownConsumer {
        /// The name given.
        name: String,
        /// The names that would do.
        choices: String,
    },
}

fn versions(pending: &[i64]) -> String {
    pending.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

//! Where both services meet: the database schema, the JetStream stream, the subjects.

use tidemark_nats::{SubjectError, SubjectScheme};

/// What both services must agree on. Every field has a default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// PostgreSQL (default `DATABASE_URL`, or postgres://postgres@127.0.0.1:5432/test).
    pub database_url: String,
    /// NATS (default `NATS_URL`, or nats://127.0.0.1:4222).
    pub nats_url: String,
    /// The store's schema (default `pipeline`).
    pub schema: String,
    /// The JetStream stream (default `PIPELINE`).
    pub stream: String,
    /// The subjects' prefix (default `pipeline.events`).
    pub subject_prefix: String,
    /// Partitions of the subjects; chosen once (default 4).
    pub partitions: u32,
}

impl Settings {
    /// The defaults, with the URLs from the environment when set.
    pub fn from_env() -> Self {
        let var = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            database_url: var("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
            nats_url: var("NATS_URL", "nats://127.0.0.1:4222"),
            schema: "pipeline".to_owned(),
            stream: "PIPELINE".to_owned(),
            subject_prefix: "pipeline.events".to_owned(),
            partitions: 4,
        }
    }

    /// Another schema, stream and subject prefix.
    pub fn names(mut self, schema: &str, stream: &str, subject_prefix: &str) -> Self {
        (self.schema, self.stream, self.subject_prefix) =
            (schema.to_owned(), stream.to_owned(), subject_prefix.to_owned());
        self
    }

    /// Another database URL.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = url.to_owned();
        self
    }

    /// Another NATS URL.
    pub fn nats_url(mut self, url: &str) -> Self {
        self.nats_url = url.to_owned();
        self
    }

    pub(crate) fn scheme(&self) -> Result<SubjectScheme, SubjectError> {
        SubjectScheme::new(&self.subject_prefix, self.partitions)
    }
}

//! [`TestDatabase`]: a fresh database per test, for database-level isolation.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::schema::POOL_SIZE;
use super::{admin, cleanup, random_name, shared::postgres_url, urls};

/// A new, uniquely named database (`tm_t_<12 hex digits>`) on the shared server, dropped
/// `WITH (FORCE)` when the value is dropped.
///
/// Prefer [`TestSchema`](crate::TestSchema), which is cheaper; use this when the code under test
/// needs a whole database: it creates schemas, uses `LISTEN`/`NOTIFY` channels or database-wide
/// settings, or lists every table.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    base_url: String,
    url: String,
    pool: PgPool,
}

impl TestDatabase {
    /// Creates a database on the server of [`postgres_url`](crate::postgres_url).
    ///
    /// # Panics
    ///
    /// Panics when no server is available (see [`postgres_url`](crate::postgres_url)) or the
    /// database cannot be created.
    pub async fn new() -> Self {
        Self::new_in(&postgres_url().await).await
    }

    /// Creates a database on the server that `base_url` points at (through whose database the
    /// database is created and later dropped).
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be reached or the database cannot be created.
    pub async fn new_in(base_url: &str) -> Self {
        let name = random_name();
        let fail = |what: String| -> ! {
            panic!("tidemark-testkit: cannot create test database {name} at {base_url}: {what}")
        };
        let url = urls::with_database(base_url, &name)
            .and_then(|url| urls::with_session(&url, &name, false))
            .unwrap_or_else(|e| fail(e));
        admin::execute(base_url, &[format!("CREATE DATABASE \"{name}\"")]).await.unwrap_or_else(|e| fail(e));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .unwrap_or_else(|e| fail(e.to_string()));
        Self { name, base_url: base_url.to_owned(), url, pool }
    }

    /// The database's name, `tm_t_<12 hex digits>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL of this database (with its name as `application_name`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool of up to 8 connections to [`url`](Self::url).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for TestDatabase {
    /// Drops the database `WITH (FORCE)`, ending its connections; best effort, bounded, never
    /// panics (a failure is printed to stderr).
    fn drop(&mut self) {
        cleanup::run_best_effort(
            self.base_url.clone(),
            vec![format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)],
        );
    }
}

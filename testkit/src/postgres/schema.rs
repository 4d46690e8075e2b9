//! [`TestSchema`]: a fresh schema per test in the shared database.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{admin, cleanup, random_name, shared::postgres_url, urls};

/// Connections in a [`TestSchema`] or [`TestDatabase`](crate::TestDatabase) pool.
pub(crate) const POOL_SIZE: u32 = 8;

/// A new, uniquely named schema (`tm_t_<12 hex digits>`) in the shared test database, dropped
/// with everything in it when the value is dropped.
///
/// Its [`url`](Self::url) sets `search_path` to the schema (and `application_name` to its name),
/// so code under test that connects with that URL, migrations included, creates and finds its
/// tables there without knowing about schemas.
///
/// ```no_run
/// # async fn demo() {
/// let schema = tidemark_testkit::TestSchema::new().await;
/// sqlx::query("CREATE TABLE t (id int)").execute(schema.pool()).await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct TestSchema {
    name: String,
    base_url: String,
    url: String,
    pool: PgPool,
}

impl TestSchema {
    /// Creates a schema in the database of [`postgres_url`](crate::postgres_url).
    ///
    /// # Panics
    ///
    /// Panics when no server is available (see [`postgres_url`](crate::postgres_url)) or the
    /// schema cannot be created.
    pub async fn new() -> Self {
        Self::new_in(&postgres_url().await).await
    }

    /// Creates a schema in the database that `base_url` points at (for example a
    /// [`PgCluster`](crate::PgCluster)'s).
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be reached or the schema cannot be created.
    pub async fn new_in(base_url: &str) -> Self {
        let name = random_name();
        let fail =
            |what: String| -> ! { panic!("tidemark-testkit: cannot create test schema {name} at {base_url}: {what}") };
        let url = urls::with_session(base_url, &name, true).unwrap_or_else(|e| fail(e));
        admin::execute(base_url, &[format!("CREATE SCHEMA \"{name}\"")]).await.unwrap_or_else(|e| fail(e));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .unwrap_or_else(|e| fail(e.to_string()));
        Self { name, base_url: base_url.to_owned(), url, pool }
    }

    /// The schema's name, `tm_t_<12 hex digits>`; a plain identifier that needs no quoting.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL whose connections use this schema (`search_path`) and carry its name as
    /// `application_name`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool of up to 8 connections to [`url`](Self::url).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for TestSchema {
    /// Ends the connections that used the schema, then drops it and the schemas named after it
    /// (`<name>_…`, where projections keep their tables) `CASCADE`; best effort, bounded, never
    /// panics (a failure is printed to stderr).
    fn drop(&mut self) {
        let name = &self.name;
        cleanup::run_best_effort(
            self.base_url.clone(),
            vec![
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = '{name}' AND pid <> pg_backend_pid()"
                ),
                format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"),
                // Projections keep their tables in schemas named after the store's.
                format!(
                    "DO $$ DECLARE s text; BEGIN \
                       FOR s IN SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '{name}_') LOOP \
                         EXECUTE format('DROP SCHEMA %I CASCADE', s); \
                       END LOOP; END $$"
                ),
            ],
        );
    }
}

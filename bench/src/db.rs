//! The run's database: a fresh schema holding tidemark's tables and the raw baselines'
//! tables, pools tagged per measurement, and clean-up.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tidemark_postgres::{PgEventStore, PgStoreConfig};

/// Marks the suite's own statements, so that the profile's statement counts leave them out.
pub(crate) const ADMIN: &str = "/* tidemark-bench admin */";

/// Tables of the raw baselines: the same columns, defaults, constraints and indexes as
/// tidemark's `events` table (`LIKE … INCLUDING ALL` copies all of them, and no trigger).
pub(crate) const RAW_TABLES: [&str; 3] = ["raw_autocommit", "raw_transaction", "raw_unnest"];

/// The run's schema and an admin pool; see [`BenchDb::drop_schema`].
#[derive(Debug)]
pub(crate) struct BenchDb {
    url: String,
    options: PgConnectOptions,
    admin: PgPool,
    schema: String,
    measurements: AtomicUsize,
    /// Group-commit settings of the stores with group commit on.
    group_commit: GroupCommitTuning,
}

/// Store settings given on the command line: group commit (the store's defaults where
/// `None`) and the NOTIFY after appends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupCommitTuning {
    /// Most appends per batch, batches in flight (`--group-commit`).
    pub limits: Option<(usize, usize)>,
    /// Events that start a batch beside one in flight, and the longest wait in
    /// milliseconds (`--group-commit-overlap`).
    pub overlap: Option<(usize, usize)>,
    /// Whether the stores send the NOTIFY after appends (on unless `--no-notify`).
    pub notify: bool,
}

impl GroupCommitTuning {
    fn apply(self, mut config: PgStoreConfig) -> PgStoreConfig {
        if let Some((max_batch, in_flight)) = self.limits {
            config = config.group_commit_limits(max_batch, in_flight);
        }
        if let Some((events, wait_ms)) = self.overlap {
            config = config.group_commit_overlap(events, Duration::from_millis(wait_ms as u64));
        }
        config.notify(self.notify)
    }
}

impl BenchDb {
    /// Creates a fresh schema, applies tidemark's migrations and creates the raw tables.
    pub(crate) async fn create(url: &str, group_commit: GroupCommitTuning) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().application_name("tidemark-bench-admin"))
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let schema = format!("bench_{}", &suffix[..12]);
        let measurements = AtomicUsize::new(0);
        let db = Self { url: url.to_owned(), options, admin, schema, measurements, group_commit };
        if let Err(error) = db.reset().await {
            let _ = db.drop_schema().await;
            return Err(error);
        }
        Ok(db)
    }

    /// (Re)creates the schema with empty tables: tidemark's, by its migrations, and the
    /// raw baselines'. Every measurement starts from here, so no side works on a larger
    /// table (or index) than the other.
    pub(crate) async fn reset(&self) -> Result<()> {
        self.drop_schemas().await?;
        tidemark_postgres::migrate(&self.admin, &self.schema).await.context("applying tidemark's migrations")?;
        let projections = tidemark_projections_postgres::PROJECTION_MIGRATIONS;
        tidemark_postgres::migrate_set(&self.admin, &self.schema, projections)
            .await
            .context("applying the projection tables")?;
        for table in RAW_TABLES {
            let sql = format!("{ADMIN} CREATE TABLE {s}.{table} (LIKE {s}.events INCLUDING ALL)", s = self.schema);
            sqlx::query(&sql).execute(&self.admin).await.with_context(|| format!("creating {table}"))?;
        }
        Ok(())
    }

    /// The database URL the run was given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// A pool for administrative queries (not measured).
    pub(crate) fn admin(&self) -> &PgPool {
        &self.admin
    }

    /// A fresh tag for one measurement's connections (their `application_name`).
    pub(crate) fn next_tag(&self) -> String {
        let n = self.measurements.fetch_add(1, Ordering::Relaxed);
        format!("tmb-{}-{n}", self.schema)
    }

    /// A plain pool of `size` connections, as a hand-written application would use:
    /// no connection check on checkout, prepared (cached) statements.
    pub(crate) async fn raw_pool(&self, tag: &str, size: usize) -> Result<PgPool> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size(size))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(self.options.clone().application_name(tag))
            .await?;
        Ok(pool)
    }

    /// tidemark's store, connected the way applications connect it
    /// (`PgEventStore::connect`, default configuration but the schema, the pool size
    /// and, if asked, group commit).
    pub(crate) async fn store(&self, tag: &str, writers: usize, group_commit: bool) -> Result<PgEventStore> {
        let mut url = url::Url::parse(&self.url).context("parsing DATABASE_URL")?;
        url.query_pairs_mut().append_pair("application_name", tag);
        // Two connections more than writers: the store's own NOTIFY task uses the pool too.
        let config = PgStoreConfig::default()
            .schema(&self.schema)
            .max_connections(pool_size(writers + 2))
            .group_commit(group_commit);
        let config = self.group_commit.apply(config);
        Ok(PgEventStore::connect(url.as_str(), config).await?)
    }

    /// Flushes dirty buffers so that no checkpoint lands inside the next measurement
    /// (every measurement then starts just after one; needs superuser, skipped
    /// otherwise), then waits up to `quiet` for other load on the machine to pass.
    pub(crate) async fn settle(&self, quiet: Duration) {
        if quiet.is_zero() {
            // `--quick`: a smoke test, whose figures mean nothing; no checkpoint, no waiting.
            return;
        }
        if let Err(error) = sqlx::query(&format!("{ADMIN} CHECKPOINT")).execute(&self.admin).await {
            tracing::debug!(%error, "CHECKPOINT refused; measurements may include one");
        }
        let started = std::time::Instant::now();
        let busy = crate::cpu::wait_for_quiet(quiet).await;
        if started.elapsed() > Duration::from_secs(1) {
            eprintln!(
                "  waited {:.0?} for the machine to calm down (now {:.0}% busy)",
                started.elapsed(),
                busy * 100.0
            );
        }
    }

    /// Process ids of the server backends serving a tagged pool.
    pub(crate) async fn backend_pids(&self, tag: &str) -> Result<Vec<i32>> {
        let pids = sqlx::query_scalar(&format!("{ADMIN} SELECT pid FROM pg_stat_activity WHERE application_name = $1"))
            .bind(tag)
            .fetch_all(&self.admin)
            .await?;
        Ok(pids)
    }

    /// Drops the run's schema and its projections' schemas (`<schema>_<projection>`)
    /// with everything in them.
    pub(crate) async fn drop_schema(&self) -> Result<()> {
        self.drop_schemas().await?;
        self.admin.close().await;
        Ok(())
    }

    async fn drop_schemas(&self) -> Result<()> {
        let sql = format!(
            "{ADMIN} SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR starts_with(nspname, $1 || '_')"
        );
        let schemas: Vec<String> = sqlx::query_scalar(&sql).bind(&self.schema).fetch_all(&self.admin).await?;
        for schema in schemas {
            let drop = format!("{ADMIN} DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::query(&drop).execute(&self.admin).await.with_context(|| format!("dropping schema {schema}"))?;
        }
        Ok(())
    }
}

fn pool_size(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

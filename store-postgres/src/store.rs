//! The PostgreSQL event store.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tidemark::{
    AppendOutcome, AppendRequest, CommandId, Error, EventIdentity, EventStore, LogPosition, Mismatch, RecordedEvent,
    Snapshot, StreamId, StreamVersion,
};
use tokio::time::Instant;

use crate::batch::GroupCommit;
use crate::config::PgStoreConfig;
use crate::error::SetupError;
use crate::migrations::{migrate_set, pending_in_set, RELAY_MIGRATIONS, STORE_MIGRATIONS};
use crate::sql::Statements;
use crate::wake::Wake;
use crate::warm::{Warm, WarmConnections};

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    config: PgStoreConfig,
    sql: Statements,
    wake: Wake,
    group: Option<GroupCommit>,
    warm: Arc<WarmConnections>,
}

/// A store reference that does not keep the store alive (held by background tasks).
#[derive(Debug, Clone)]
pub(crate) struct WeakStore(Weak<Inner>);

impl WeakStore {
    pub(crate) fn upgrade(&self) -> Option<PgEventStore> {
        self.0.upgrade().map(|inner| PgEventStore { inner })
    }
}

/// An [`EventStore`] in PostgreSQL. Cloning shares the pool and wake-up tasks.
///
/// Appends are one statement and one round trip; the global log is gap-safe (see
/// `docs/gap-safe-log.md`); readers are woken after commit. Apply the schema with
/// [`PgEventStore::migrate`] before use.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    inner: Arc<Inner>,
}

impl PgEventStore {
    /// Connects a pool of `config.max_connections` connections (no connection check on
    /// checkout: a broken connection surfaces as a retryable error instead).
    pub async fn connect(url: &str, config: PgStoreConfig) -> Result<Self, SetupError> {
        config.validate()?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Self::from_pool(pool, config)
    }

    /// Uses an existing pool. Must be called inside a tokio runtime.
    pub fn from_pool(pool: PgPool, config: PgStoreConfig) -> Result<Self, SetupError> {
        config.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| SetupError::NoRuntime)?;
        let sql = Statements::new(&config.schema, config.gap_safe);
        let warm = WarmConnections::start(&pool);
        let wake = Wake::new(&warm, &sql.channel, config.notify.then_some(config.notify_interval));
        let inner = Arc::new_cyclic(|weak| {
            let group = config.group_commit.then(|| GroupCommit::start(WeakStore(weak.clone()), &config));
            Inner { pool, config, sql, wake, group, warm }
        });
        Ok(Self { inner })
    }

    /// Creates the schema if needed and applies the pending migrations of the store's
    /// tables and the relay's ([`STORE_MIGRATIONS`](crate::STORE_MIGRATIONS) and
    /// [`RELAY_MIGRATIONS`](crate::RELAY_MIGRATIONS)). Safe to run again, and from several
    /// processes at once. Uses a connection of its own. Other crates' tables (the
    /// projection runtime's) are migrated by those crates.
    pub async fn migrate(&self) -> Result<(), SetupError> {
        migrate(&self.inner.pool, &self.inner.config.schema).await
    }

    /// The versions of the store's and the relay's migrations not applied to its schema
    /// yet: a process that must not migrate on its own can check it is running against an
    /// up-to-date schema.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, SetupError> {
        let schema = &self.inner.config.schema;
        let mut pending = pending_in_set(&self.inner.pool, schema, STORE_MIGRATIONS).await?;
        pending.extend(pending_in_set(&self.inner.pool, schema, RELAY_MIGRATIONS).await?);
        pending.sort_unstable();
        Ok(pending)
    }

    /// The connection pool, to share with the read models and coordination of the same
    /// database (`PgReadModels::sharing`, `Coordination::postgres`) and to run queries of
    /// your own. Writing to the store's tables through it bypasses every check the store
    /// makes (versions, idempotency, the append-only trigger aside): append through
    /// [`EventStore::append`](tidemark::EventStore::append) only.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The configuration.
    pub fn config(&self) -> &PgStoreConfig {
        &self.inner.config
    }

    pub(crate) fn sql(&self) -> &Statements {
        &self.inner.sql
    }

    pub(crate) fn wake(&self) -> &Wake {
        &self.inner.wake
    }

    pub(crate) fn group_commit(&self) -> Option<&GroupCommit> {
        self.inner.group.as_ref()
    }

    /// A connection for the hot statements, kept warm between them (no ping on release).
    pub(crate) async fn warm(&self) -> Result<Warm<'_>, sqlx::Error> {
        self.inner.warm.take().await
    }
}

/// Applies the store's and the relay's migrations to `schema`, each through a dedicated
/// connection.
pub async fn migrate(pool: &PgPool, schema: &str) -> Result<(), SetupError> {
    migrate_set(pool, schema, STORE_MIGRATIONS).await?;
    migrate_set(pool, schema, RELAY_MIGRATIONS).await
}

impl EventStore for PgEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        self.append_request(request).await
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.stream_page(stream_id, from, limit).await
    }

    async fn identities(&self, at: &[(StreamId, StreamVersion)]) -> Result<Vec<EventIdentity>, Error> {
        self.identities_at(at).await
    }

    async fn verify_events(&self, events: &[&RecordedEvent]) -> Result<Vec<Mismatch>, Error> {
        self.mismatched(events).await
    }

    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        self.log_page(after, limit).await
    }

    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool, Error> {
        let mut woken = self.wake().subscribe(self.pool(), &self.sql().channel);
        if self.readable_head().await? > Some(after) {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let step = (deadline - now).min(self.config().poll_interval);
            // Woken or not, look: a wake-up may be for events still behind the horizon,
            // and a lost notification is made up for by this poll.
            let _ = tokio::time::timeout(step, woken.changed()).await;
            if self.readable_head().await? > Some(after) {
                return Ok(true);
            }
        }
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<StreamVersion, Error> {
        self.head_of(stream_id).await
    }

    async fn log_head(&self) -> Result<Option<LogPosition>, Error> {
        self.readable_head().await
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>, Error> {
        self.outcome_of(command_id).await
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        self.snapshot_of(stream_id).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        self.store_snapshot(snapshot).await
    }
}

//! Versioned migrations, one set per owner, all applied into the store's schema.
//!
//! Each crate owns the tables it uses: this crate the store's (events, commands,
//! snapshots) and the relay's (checkpoints, the message key); the projection runtime's
//! PostgreSQL backend its own. The sets share one `_sqlx_migrations` table in the schema,
//! so their versions are distinct numbers: 1–10 were assigned before the sets were split
//! (a database migrated then already holds every set's rows), and a set's later
//! migrations take numbers from its own range (the store 1000–1999, the relay 2000–2999,
//! the projection backend 3000–3999). A set ignores the versions of the others.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::PgStoreConfig;
use crate::error::SetupError;

/// One owner's migrations (see [`migrate_set`]).
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    name: &'static str,
    migrator: &'static Migrator,
}

impl MigrationSet {
    /// Wraps the migrations an owner embeds (with `sqlx::migrate!`), named for messages.
    /// The set must not ignore other sets' versions itself: [`migrate_set`] does that.
    pub const fn new(name: &'static str, migrator: &'static Migrator) -> Self {
        Self { name, migrator }
    }

    /// The owner's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The versions of the set, in order.
    pub fn versions(&self) -> impl Iterator<Item = i64> + '_ {
        self.migrator.iter().map(|m| m.version)
    }

    /// The migrations of the set, in order: each one's version, description and SQL.
    pub fn migrations(&self) -> impl Iterator<Item = &'static sqlx::migrate::Migration> {
        self.migrator.iter()
    }
}

static STORE: Migrator = sqlx::migrate!("./migrations/store");
static RELAY: Migrator = sqlx::migrate!("./migrations/relay");

/// The store's tables: events, commands, snapshots.
pub const STORE_MIGRATIONS: MigrationSet = MigrationSet::new("store", &STORE);
/// The relay's tables: checkpoints and the secret messages are signed with.
pub const RELAY_MIGRATIONS: MigrationSet = MigrationSet::new("relay", &RELAY);

/// Creates `schema` if needed and applies the pending migrations of `set` to it, through
/// a connection of its own. Safe to run again, and from several processes at once (the
/// sets of one database take turns).
pub async fn migrate_set(pool: &PgPool, schema: &str, set: MigrationSet) -> Result<(), SetupError> {
    PgStoreConfig::default().schema(schema).validate()?;
    let migrator = Migrator { ignore_missing: true, ..clone_of(set.migrator) };
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).execute(&mut conn).await?;
    sqlx::query(&format!("SET search_path TO \"{schema}\"")).execute(&mut conn).await?;
    let result = migrator.run(&mut conn).await;
    conn.close().await?;
    Ok(result?)
}

fn clone_of(migrator: &'static Migrator) -> Migrator {
    Migrator {
        migrations: std::borrow::Cow::Borrowed(&migrator.migrations[..]),
        ignore_missing: migrator.ignore_missing,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    }
}

/// The versions of `set` not applied to `schema` yet (all of them when the schema or its
/// migration table does not exist): a process that must not migrate on its own can check
/// it runs against an up-to-date schema.
pub async fn pending_in_set(pool: &PgPool, schema: &str, set: MigrationSet) -> Result<Vec<i64>, SetupError> {
    PgStoreConfig::default().schema(schema).validate()?;
    let sql = format!("SELECT version FROM \"{schema}\"._sqlx_migrations WHERE success ORDER BY version");
    let applied: Vec<i64> = match sqlx::query_scalar(&sql).fetch_all(pool).await {
        Ok(applied) => applied,
        // 42P01 undefined_table, 3F000 invalid_schema_name: nothing applied yet.
        Err(e) if matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42P01" | "3F000")) => {
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    Ok(set.versions().filter(|v| !applied.contains(v)).collect())
}

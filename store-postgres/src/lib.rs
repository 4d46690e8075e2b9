//! The PostgreSQL event store of tidemark.
//!
//! - one statement and one round trip per append (`UNNEST` arrays, constant SQL text);
//! - version conflicts and duplicate command ids recognised by constraint name;
//! - an append-only events table, enforced by triggers;
//! - a gap-safe global log ordered by (transaction id, position) and read below the
//!   oldest running transaction;
//! - readers woken after commit (in-process directly, across processes by a coalesced
//!   NOTIFY), with polling as the fallback;
//! - versioned migrations in a configurable schema, one set per owning crate.
#![doc = include_str!("../README.md")]

mod append;
mod archive;
mod backlog;
mod batch;
mod batch_plain;
mod checkpoint;
mod config;
mod diagnostics;
mod error;
mod message_key;
mod metrics;
mod migrations;
mod personal_keys;
mod read;
mod row;
mod sql;
mod store;
mod tail;
mod tenant;
mod tenant_sql;
mod wake;
mod warm;

/// The PostgreSQL driver whose types (`PgPool`, `PgConnectOptions`) this crate's API uses.
pub use sqlx;

pub use archive::{ArchivePolicy, ArchiveReport, DEFAULT_ARCHIVE_AGE};
pub use backlog::Backlog;
pub use config::PgStoreConfig;
pub use diagnostics::{HoldingTransaction, LogHorizon};
pub use error::{is_transient, SetupError};
pub use metrics::{describe_metrics, APPENDED_EVENTS_TOTAL, APPENDS_TOTAL, APPEND_SECONDS};
pub use migrations::{migrate_set, pending_in_set, MigrationSet, RELAY_MIGRATIONS, STORE_MIGRATIONS};
pub use personal_keys::{ForgetReport, PgPersonalKeys};
pub use store::{migrate, PgEventStore};
pub use tail::{LogTail, LogWatch};
pub use tenant::{validate_tenant, PgTenantStore, MAX_TENANT_BYTES};

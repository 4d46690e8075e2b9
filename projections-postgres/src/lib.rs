//! PostgreSQL for the projection runtime of tidemark: read models whose batches run in a
//! sqlx transaction together with their checkpoint, the runtime's bookkeeping tables and
//! their migrations, the advisory-lock [`Coordination`] through which runner
//! instances share partitions, and [`PgLogFeed`], a feed that reads the store's log directly.
#![doc = include_str!("../README.md")]

#[cfg(feature = "cli")]
mod archive_ops;
mod coordination;
mod dead_letters;
mod error;
mod migrations;
#[cfg(feature = "cli")]
mod ops;
mod pg_admin;
mod pg_documents;
mod pg_feed;
mod pg_literal;
mod pg_locks;
mod pg_pause;
mod pg_progress;
mod pg_rebuild;
mod pg_rogue;
mod pg_tx;
mod postgres;

#[cfg(feature = "cli")]
pub use archive_ops::PgArchive;
pub use coordination::{Coordination, Locks};
pub use migrations::PROJECTION_MIGRATIONS;
pub use pg_feed::{PgLogFeed, PgLogSubscription};
pub use postgres::{PgReadModels, PgTx};
/// The driver whose pool and transaction types appear in this crate's API.
pub use sqlx;

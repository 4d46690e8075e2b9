//! The projection runtime of tidemark: idempotent read-model builders fed by a [`Feed`]
//! (the relay's JetStream stream in `tidemark-nats`, or the [`InProcessBus`]), applying
//! batches and their checkpoint (feed cursor included) in one transaction of a
//! [`ReadModels`] backend (`tidemark-projections-postgres`, or [`MemoryReadModels`]),
//! reading the feed from that checkpoint, repairing gaps from the store, and sharing
//! partitions between instances through a [`Coordinator`]. It depends on `tidemark` only;
//! the ops CLI is the `cli` feature.
#![doc = include_str!("../README.md")]

mod admin;
mod bus;
mod config;
mod coordinate;
mod documents;
mod error;
mod feed;
mod lag;
mod letters;
mod memory;
mod metrics;
#[cfg(feature = "cli")]
mod ops;
mod optimisations;
mod partition;
mod projection;
mod read_models;
mod rebuild;
mod rebuild_pages;
mod replay;
mod resolve;
mod reveal;
mod runner;
mod status;
mod trace_context;
mod wait;
mod worker;

pub use admin::ReadModelsAdmin;
#[cfg(feature = "fault-injection")]
pub use bus::BusFaults;
pub use bus::{BusSubscription, InProcessBus};
pub use config::{PoisonPolicy, RunnerConfig, VersionChange};
pub use coordinate::{Coordinator, Seat};
pub use documents::{DocumentReader, DocumentTx};
pub use error::{check_name, is_connection_loss, ApplyError, ProjectionError, Result};
pub use feed::{Delivery, Feed, FeedCursor, Incoming, Subscription};
pub use lag::Lag;
pub use letters::{DeadLetter, DeadLetterStatus, RogueMessage};
pub use memory::{MemoryReadModels, MemoryTx};
pub use metrics::{describe_metrics, LAG_MEASURED, LAST_COMMIT};
#[cfg(feature = "cli")]
pub use ops::{
    parse_age, verify_log, ArchiveOps, ArchivedStreams, AuditReport, DlqCommand, EventVerifier, EventsCommand, Finding,
    MigrateArgs, Ops, OpsCommand, OpsExit, OpsFuture, Output, PartitionView, PendingMigration, ProjectionOps,
    ProjectionState, ProjectionsCommand, RelayCommand, RelayOps, RelayState, SchemaMigrations, StreamCommand,
    VerifyFailure, VerifyReport,
};
pub use optimisations::{BatchOptimisations, CheckedCommit};
pub use projection::Projection;
pub use read_models::{PartitionState, Progress, ReadModels, Seen};
pub use rebuild::{RebuildOptions, RebuildOutcome, RebuildProgress};
pub use replay::{ReplayFrom, ReplayReport};
pub use reveal::{RevealingFeed, RevealingSubscription};
pub use runner::ProjectionRunner;
pub use status::RunnerStatus;
pub use wait::wait_for_version;
pub use worker::BatchReport;

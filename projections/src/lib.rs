//! The projection runtime of tidemark: idempotent read-model builders fed by the relay's
//! JetStream stream (or an in-process bus), applying batches and their checkpoint (feed
//! cursor included) in one transaction, reading the feed from that checkpoint, repairing
//! gaps from the store, and sharing partitions between instances.
#![doc = include_str!("../README.md")]

mod assign;
mod bus;
mod config;
mod dead_letters;
mod documents;
mod error;
mod feed;
mod jetstream;
mod lag;
mod memory;
mod metrics;
mod ops;
mod partition;
mod pg_documents;
mod pg_literal;
mod pg_locks;
mod pg_progress;
mod pg_rebuild;
mod pg_rogue;
mod pg_tx;
mod postgres;
mod projection;
mod read_models;
mod rebuild;
mod resolve;
mod runner;
mod status;
mod wait;
mod worker;

pub use assign::Coordination;
pub use bus::{BusFaults, BusSubscription, InProcessBus};
pub use config::{PoisonPolicy, RunnerConfig, VersionChange};
pub use documents::{DocumentReader, DocumentTx};
pub use error::{ApplyError, ProjectionError, Result};
pub use feed::{Delivery, Feed, FeedCursor, Incoming, Subscription};
pub use jetstream::{ConsumerSettings, JetStreamFeed, JetStreamSubscription};
pub use lag::Lag;
pub use memory::{MemoryReadModels, MemoryTx};
pub use ops::{
    verify_log, AuditReport, DlqCommand, EventVerifier, EventsCommand, Finding, LogDiagnostics, Ops, OpsCommand,
    OpsExit, OpsFuture, Output, PartitionView, ProjectionOps, ProjectionState, ProjectionsCommand, StreamCommand,
    VerifyFailure, VerifyReport,
};
pub use postgres::{PgReadModels, PgTx};
pub use projection::Projection;
pub use read_models::{
    CheckedCommit, DeadLetter, DeadLetterStatus, PartitionState, Progress, ReadModels, RogueMessage, Seen,
};
pub use rebuild::{RebuildOptions, RebuildOutcome, RebuildProgress};
pub use runner::ProjectionRunner;
pub use status::RunnerStatus;
pub use wait::wait_for_version;
pub use worker::BatchReport;

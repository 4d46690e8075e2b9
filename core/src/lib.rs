//! tidemark: event sourcing and CQRS for Rust.
//!
//! This crate is the core: aggregates as pure deciders, domain events with stable type
//! names and schema versions, upcasters, snapshots, command handling with optimistic
//! concurrency and idempotent command ids, the [`EventStore`] trait and an in-memory
//! store. It holds no database or network code: the PostgreSQL store lives in
//! `tidemark-postgres`.
#![doc = include_str!("../README.md")]

mod aggregate;
mod backoff;
mod cache;
mod codec;
mod command;
mod diagnostics;
mod error;
mod event;
mod hash;
mod identity;
mod ids;
mod memory;
mod metadata;
mod metrics;
mod personal;
mod store;
mod stream_id;
mod testing;
mod tombstone;
pub mod trace;
mod version;

pub use aggregate::Aggregate;
pub use backoff::Backoff;
pub use codec::{EventCodec, RegistryError, Upcast, Upcasters};
pub use command::{
    CommandError, CommandHandler, CommandOptions, HandlerConfig, Loaded, SnapshotPolicy, DEFAULT_CACHE_CAPACITY,
};
pub use diagnostics::LogDiagnostics;
pub use error::{BackendError, Error, InvalidStreamId, Result};
pub use event::{DecodeError, DomainEvent, Envelope, EventType, NewEvent, RecordedEvent};
pub use identity::{EventIdentity, Mismatch};
pub use ids::{CommandId, EventId};
pub use memory::InMemoryEventStore;
pub use metadata::Metadata;
pub use metrics::{describe_metrics, record_command, COMMANDS_TOTAL, COMMAND_SECONDS};
pub use personal::{
    reveal_events, seal_events, InMemoryPersonalKeys, KeyState, PersonalData, PersonalError, PersonalFields,
    PersonalKeys, ShreddingStore, SubjectKey, FORGOTTEN, SEALED_PREFIX,
};
pub use store::{
    read_log_through, read_stream_to_end, AppendOutcome, AppendRequest, EventStore, Snapshot, DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_POLL_INTERVAL,
};
pub use stream_id::{StreamId, MAX_STREAM_ID_LEN};
pub use testing::{AggregateTest, Given, When};
pub use tombstone::TOMBSTONE_EVENT_TYPE;
pub use version::{ExpectedVersion, LogPosition, ParseLogPositionError, StreamVersion};

/// Re-exports used by [`domain_events!`] and the framework's own crates; not part of the
/// public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::hash::fnv1a_32 as stable_hash;
    pub use serde_json;
    pub use serde_json::value::RawValue;
}

/// The repository README's example, compiled and run as a doc-test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

//! The embedded mode: everything in this process's memory.

use tidemark::{InMemoryEventStore, LogPosition};
use tidemark_projections::{InProcessBus, MemoryReadModels};

use super::backend::{Backend, Running};
use super::runners::{Role, RunMode};
use super::tasks::Tasks;
use super::StartError;
use crate::app::AppConfig;
use crate::auth::TokenKeys;
use crate::domain::import_fixture;

/// Options of the embedded mode.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The app's knobs.
    pub config: AppConfig,
    /// The token keys.
    pub keys: TokenKeys,
    /// Whether to import the v1 fixture at start (default true).
    pub import_fixture: bool,
    /// Partitions of the in-process bus (default 4).
    pub partitions: u32,
}

impl EmbeddedOptions {
    /// The default number of partitions.
    pub const PARTITIONS: u32 = 4;

    /// Defaults with these keys.
    pub fn new(keys: TokenKeys) -> Self {
        Self { config: AppConfig::default(), keys, import_fixture: true, partitions: Self::PARTITIONS }
    }
}

/// An in-memory store (holding the v1 fixture if asked), in-memory read models and an
/// in-process bus of `partitions` partitions, nothing running yet (the ops commands of
/// the embedded mode use it as it is).
pub async fn embedded_backend(
    import: bool,
    partitions: u32,
) -> Result<Backend<InMemoryEventStore, MemoryReadModels, InProcessBus>, StartError> {
    let store = InMemoryEventStore::new();
    if import {
        let imported = import_fixture(&store).await?;
        tracing::info!(events = imported, "imported the v1 fixture");
    }
    let feed = InProcessBus::new(partitions)?;
    Ok(Backend { store, read_models: MemoryReadModels::new(), feed, mode: RunMode::InProcess })
}

/// Starts the embedded mode: an in-memory store (with the v1 fixture imported unless
/// told otherwise), an in-process bus pumped from the store, in-memory read models, and
/// every consumer.
pub async fn start_embedded(
    options: EmbeddedOptions,
) -> Result<Running<InMemoryEventStore, MemoryReadModels>, StartError> {
    let backend = embedded_backend(options.import_fixture, options.partitions).await?;
    let mut tasks = Tasks::default();
    let (bus, store) = (backend.feed.clone(), backend.store.clone());
    tasks
        .spawn("in-process bus", move |stop| async move { bus.pump(&store, LogPosition::START, stop).await.map(drop) });
    backend.start(options.keys, options.config, &Role::All, tasks)
}

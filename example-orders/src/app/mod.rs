//! The app's state: command handlers, the outcome hub, idempotency keys and read models.

mod decision;
mod hub;
mod idempotency;
mod notice;
mod outcomes;
mod pipeline;
mod reads;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tidemark::{CommandHandler, CommandId, EventStore};
use tokio::sync::{RwLock, Semaphore};
use uuid::Uuid;

use crate::auth::TokenKeys;
use crate::domain::{Fulfilment, Order};

pub use decision::{Decision, Origin};
pub use hub::Hub;
pub use idempotency::{fingerprint, Fingerprint, IdempotencyStore, Lookup, MAX_KEY_BYTES};
pub use notice::{CommandFailure, CommandStatus, Notice};
pub use outcomes::{CommandRecord, Outcomes};
pub use pipeline::{request_ids, Submission};
pub use reads::ReadWait;

/// The app's knobs. Every one has a default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppConfig {
    /// Most commands executing at once; more are refused with 503 (default 1024).
    pub max_in_flight: usize,
    /// Command outcomes kept for `GET /commands/{id}` (default 10 000).
    pub outcome_capacity: usize,
    /// Idempotency keys remembered (default 10 000).
    pub idempotency_capacity: usize,
    /// Messages queued per WebSocket before it is dropped as too slow (default 64).
    pub socket_buffer: usize,
    /// Longest read-your-writes wait a query may ask for (default 10 s).
    pub max_wait: Duration,
    /// Fraction of command requests that fail with 500 on purpose, 0 to 1 (default 0).
    pub chaos: f64,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            outcome_capacity: 10_000,
            idempotency_capacity: 10_000,
            socket_buffer: 64,
            max_wait: Duration::from_secs(10),
            chaos: 0.0,
        }
    }
}

impl AppConfig {
    /// Sets the chaos fraction (clamped to 0..=1).
    pub fn chaos(mut self, fraction: f64) -> Self {
        self.chaos = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        self
    }
}

/// The answer to an accepted command (`202 Accepted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// The command's id.
    pub command_id: CommandId,
    /// Where to poll its outcome.
    pub status_url: String,
    /// The order it is about.
    pub entity_id: Uuid,
}

/// Everything the HTTP layer and the consumers share.
#[derive(Debug)]
pub struct App<S: EventStore, R> {
    orders: Arc<CommandHandler<Order, S>>,
    fulfilments: Arc<CommandHandler<Fulfilment, S>>,
    read_models: R,
    outcomes: Outcomes,
    hub: Arc<Hub>,
    idempotency: IdempotencyStore,
    keys: TokenKeys,
    config: AppConfig,
    in_flight: Arc<Semaphore>,
    /// Taken shared by every append of a decided command (see [`App::hold_appends`]).
    appends: RwLock<()>,
}

impl<S: EventStore, R> App<S, R> {
    /// An app over command handlers (shared with the process manager) and read models.
    pub fn new(
        orders: Arc<CommandHandler<Order, S>>,
        fulfilments: Arc<CommandHandler<Fulfilment, S>>,
        read_models: R,
        keys: TokenKeys,
        config: AppConfig,
    ) -> Self {
        Self {
            orders,
            fulfilments,
            read_models,
            outcomes: Outcomes::new(config.outcome_capacity),
            hub: Arc::new(Hub::new(config.socket_buffer)),
            idempotency: IdempotencyStore::new(config.idempotency_capacity),
            keys,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            appends: RwLock::new(()),
            config,
        }
    }

    /// The order command handler.
    pub fn orders(&self) -> &Arc<CommandHandler<Order, S>> {
        &self.orders
    }

    /// The fulfilment command handler.
    pub fn fulfilments(&self) -> &Arc<CommandHandler<Fulfilment, S>> {
        &self.fulfilments
    }

    /// The read models.
    pub fn read_models(&self) -> &R {
        &self.read_models
    }

    /// The outcome hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The command outcomes.
    pub fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }

    /// The idempotency keys.
    pub fn idempotency(&self) -> &IdempotencyStore {
        &self.idempotency
    }

    /// The token keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }
}

//! A backend (store, read models, the consumers' feed, how runners share partitions),
//! and what a process runs over it. Both modes go through here.

use std::sync::Arc;
use std::time::Duration;

use tidemark::EventStore;
use tidemark::LogDiagnostics;
use tidemark_projections::{
    BatchOptimisations, DocumentReader, DocumentTx, Feed, InProcessBus, Ops, ReadModelsAdmin, RunnerStatus,
};
use tokio_util::sync::CancellationToken;

use super::runners::{Handlers, Role, RunMode, Runners};
use super::tasks::{TaskFailure, Tasks};
use super::StartError;
use crate::app::{App, AppConfig, Hub};
use crate::auth::TokenKeys;
use crate::metrics::sample_lag;

/// How often a process on PostgreSQL measures the lag of the consumers it does not run.
pub const LAG_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Where the app keeps its events and read models, and how its consumers are fed.
#[derive(Debug, Clone)]
pub struct Backend<S, R, F> {
    /// The event store.
    pub store: S,
    /// The read models.
    pub read_models: R,
    /// The feed the consumers take events from.
    pub feed: F,
    /// How the runners share the feed's partitions.
    pub mode: RunMode,
}

impl<S, R, F> Backend<S, R, F>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
    R::Tx: DocumentTx,
    F: Feed + Clone,
{
    /// The command handlers over the store.
    pub fn handlers(&self) -> Result<Handlers<S>, StartError> {
        Ok(Handlers::new(&self.store)?)
    }

    fn runners(&self, handlers: &Handlers<S>, hub: Arc<Hub>) -> Result<Runners<S, R, F>, StartError> {
        Runners::new((&self.store, &self.read_models, &self.feed), handlers, hub)
    }

    /// The app's state, and the consumers `role` names running in `tasks`.
    pub fn start(
        self,
        keys: TokenKeys,
        config: AppConfig,
        role: &Role,
        tasks: Tasks,
    ) -> Result<Running<S, R, F>, StartError> {
        let handlers = self.handlers()?;
        let app = Arc::new(App::new(
            handlers.orders.clone(),
            handlers.fulfilments.clone(),
            self.read_models.clone(),
            keys,
            config,
        ));
        let background = self.start_with(&handlers, app.hub().clone(), role, tasks)?;
        Ok(Running { app, background })
    }

    /// The consumers `role` names running in `tasks`, with no HTTP front
    /// (`projections run`): the notifier, if it runs, reaches no socket.
    pub fn start_consumers(self, role: &Role, tasks: Tasks) -> Result<Background<S, R, F>, StartError> {
        let handlers = self.handlers()?;
        self.start_with(&handlers, Arc::new(Hub::new(1)), role, tasks)
    }

    fn start_with(
        self,
        handlers: &Handlers<S>,
        hub: Arc<Hub>,
        role: &Role,
        mut tasks: Tasks,
    ) -> Result<Background<S, R, F>, StartError> {
        role.check()?;
        let runners = Arc::new(self.runners(handlers, hub)?);
        runners.spawn(role, &self.mode, &mut tasks);
        if matches!(self.mode, RunMode::Shared(_)) {
            let (watched, role) = (runners.clone(), role.clone());
            tasks.spawn("lag sampler", move |stop| async move {
                let measure = || async { watched.sample_gauges(&role).await };
                sample_lag(measure, LAG_SAMPLE_EVERY, stop).await;
                Ok::<(), std::convert::Infallible>(())
            });
        }
        Ok(Background { store: self.store, runners, role: role.clone(), tasks })
    }

    /// The ops commands over this backend: every consumer and both codecs mounted.
    pub fn ops(&self) -> Result<Ops<S>, StartError>
    where
        S: LogDiagnostics,
    {
        let runners = self.runners(&self.handlers()?, Arc::new(Hub::new(1)))?;
        runners.ops(self.store.clone())
    }
}

/// The background of a process: its consumers and other tasks.
#[derive(Debug)]
pub struct Background<S: EventStore, R, F> {
    store: S,
    runners: Arc<Runners<S, R, F>>,
    role: Role,
    tasks: Tasks,
}

/// Reads what each consumer of a process is doing, by name (for the readiness check).
pub type ConsumerStatuses = Arc<dyn Fn() -> Vec<(String, RunnerStatus)> + Send + Sync>;

impl<S, R, F> Background<S, R, F>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations,
    R::Tx: DocumentTx,
    F: Feed + Clone,
{
    /// The ops commands over the running consumers (a rebuild swaps in under them).
    pub fn ops(&self) -> Result<Ops<S>, StartError>
    where
        S: LogDiagnostics,
    {
        self.runners.ops(self.store.clone())
    }

    /// Reads what each consumer this process runs is doing.
    pub fn consumers(&self) -> ConsumerStatuses
    where
        Runners<S, R, F>: Send + Sync + 'static,
    {
        let (runners, role) = (self.runners.clone(), self.role.clone());
        Arc::new(move || runners.statuses(&role))
    }
}

impl<S: EventStore, R, F> Background<S, R, F> {
    /// The token that stops the background; cancelled too when a task fails.
    pub fn shutdown(&self) -> &CancellationToken {
        self.tasks.shutdown()
    }

    /// Stops every task and waits for them; the first failure, if any.
    pub async fn join(self) -> Result<(), TaskFailure> {
        self.tasks.join().await
    }
}

/// A running app: its state and its background.
#[derive(Debug)]
pub struct Running<S: EventStore, R, F = InProcessBus> {
    /// The app's state.
    pub app: Arc<App<S, R>>,
    /// The consumers and other tasks.
    pub background: Background<S, R, F>,
}

impl<S: EventStore, R, F> Running<S, R, F> {
    /// Closes the WebSockets, stops the background and waits for it; the first failure
    /// of a background task, if any.
    pub async fn join(self) -> Result<(), TaskFailure> {
        self.app.hub().close_all();
        self.background.join().await
    }

    /// Like [`join`](Self::join), logging a failure instead of returning it.
    pub async fn stop(self) {
        if let Err(failure) = self.join().await {
            tracing::error!(%failure, "the app stopped with a failed background task");
        }
    }
}

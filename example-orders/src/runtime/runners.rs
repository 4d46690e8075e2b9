//! The app's consumers as projection runners: three read models, the notifier and the
//! process manager's two consumers. Built the same way over every backend; the same
//! values are spawned and mounted into the ops commands.

use std::sync::Arc;

use tidemark::LogDiagnostics;
use tidemark::{CommandHandler, EventStore};
use tidemark_projections::{
    BatchOptimisations, DeadLetterStatus, DocumentTx, Feed, Ops, PoisonPolicy, Projection, ProjectionError,
    ProjectionRunner, ReadModelsAdmin, RunnerConfig, RunnerStatus,
};
use tidemark_projections_postgres::Coordination;
use tokio_util::sync::CancellationToken;

use super::tasks::{pause, retry_delays, Tasks};
use super::StartError;
use crate::app::Hub;
use crate::domain::{codec, fulfilment_codec, Fulfilment, Order};
use crate::metrics::DEAD_LETTERS;
use crate::read_models::{
    DispatchedFollowUps, FulfilmentQueueProjection, NotifierProjection, OrdersProjection, PaidFollowUps,
    SalesProjection, DISPATCHED_FOLLOW_UPS, FULFILMENT_QUEUE, NOTIFIER, ORDERS, ORDER_SUMMARIES, PAID_FOLLOW_UPS,
    SALES,
};

/// The consumers `projections run` runs: every one but the notifier (the order summaries'
/// KV projection only on PostgreSQL + JetStream).
pub const BACK_CONSUMERS: [&str; 6] =
    [ORDERS, SALES, FULFILMENT_QUEUE, PAID_FOLLOW_UPS, DISPATCHED_FOLLOW_UPS, ORDER_SUMMARIES];

/// Which consumers a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Every consumer: the embedded mode, `orders` and `orders serve`.
    All,
    /// Only the notifier, which pushes to this process's WebSockets: `serve --front`.
    Front,
    /// The read models and the process manager, or only the one named: `projections run`.
    Back {
        /// Only this consumer (one of [`BACK_CONSUMERS`]).
        only: Option<String>,
    },
    /// None: the ops commands.
    Nothing,
}

impl Role {
    /// Whether the consumer `name` runs in this role.
    pub fn runs(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Front => name == NOTIFIER,
            Self::Back { only } => name != NOTIFIER && only.as_deref().is_none_or(|only| only == name),
            Self::Nothing => false,
        }
    }

    /// Fails when `only` names no consumer `projections run` knows.
    pub fn check(&self) -> Result<(), StartError> {
        match self {
            Self::Back { only: Some(name) } if !BACK_CONSUMERS.contains(&name.as_str()) => {
                Err(StartError::UnknownConsumer { name: name.clone(), choices: BACK_CONSUMERS.join(", ") })
            }
            _ => Ok(()),
        }
    }
}

/// How a process's runners share the partitions of the feed.
#[derive(Debug, Clone)]
pub enum RunMode {
    /// Every partition in this process (`ProjectionRunner::run`): the embedded mode.
    InProcess,
    /// Shared with the other instances meeting there (`ProjectionRunner::run_shared`).
    Shared(Coordination),
}

/// The command handlers, shared by the HTTP layer, the process manager and `seed`.
#[derive(Debug)]
pub struct Handlers<S: EventStore> {
    /// Orders.
    pub orders: Arc<CommandHandler<Order, S>>,
    /// Fulfilments.
    pub fulfilments: Arc<CommandHandler<Fulfilment, S>>,
}

impl<S: EventStore> Clone for Handlers<S> {
    fn clone(&self) -> Self {
        Self { orders: self.orders.clone(), fulfilments: self.fulfilments.clone() }
    }
}

impl<S: EventStore + Clone> Handlers<S> {
    /// Handlers over `store`, with the codecs (and the order upcaster).
    pub fn new(store: &S) -> Result<Self, tidemark::RegistryError> {
        Ok(Self {
            orders: Arc::new(CommandHandler::new(store.clone(), Arc::new(codec()?))),
            fulfilments: Arc::new(CommandHandler::new(store.clone(), Arc::new(fulfilment_codec()?))),
        })
    }
}

/// One runner per consumer.
#[derive(Debug)]
pub struct Runners<S: EventStore, R, F> {
    orders: ProjectionRunner<OrdersProjection, R, S, F>,
    sales: ProjectionRunner<SalesProjection, R, S, F>,
    fulfilment_queue: ProjectionRunner<FulfilmentQueueProjection, R, S, F>,
    notifier: ProjectionRunner<NotifierProjection, R, S, F>,
    paid: ProjectionRunner<PaidFollowUps<S>, R, S, F>,
    dispatched: ProjectionRunner<DispatchedFollowUps<S>, R, S, F>,
}

fn runner<P, R, S, F>(
    parts: (&S, &R, &F),
    projection: P,
    config: RunnerConfig,
) -> Result<ProjectionRunner<P, R, S, F>, ProjectionError>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + Clone + 'static,
    F: Feed + Clone,
{
    let (store, read_models, feed) = parts;
    ProjectionRunner::new(projection, read_models.clone(), store.clone(), feed.clone(), config)
}

impl<S, R, F> Runners<S, R, F>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations,
    R::Tx: DocumentTx,
    F: Feed + Clone,
{
    /// The runners over a store, read models and feed; the notifier pushes to `hub`.
    pub fn new(parts: (&S, &R, &F), handlers: &Handlers<S>, hub: Arc<Hub>) -> Result<Self, StartError> {
        let config = RunnerConfig::default;
        // A follow-up that keeps failing is retried rather than parked: losing one would
        // leave a paid order unfulfilled.
        let halt = || RunnerConfig::default().poison(PoisonPolicy::Halt, 5);
        let (orders, fulfilments) = (handlers.orders.clone(), handlers.fulfilments.clone());
        Ok(Self {
            orders: runner(parts, OrdersProjection::new()?, config())?,
            sales: runner(parts, SalesProjection::new()?, config())?,
            fulfilment_queue: runner(parts, FulfilmentQueueProjection::new()?, config())?,
            notifier: runner(parts, NotifierProjection::new(hub)?, config())?,
            paid: runner(parts, PaidFollowUps::new(orders.clone(), fulfilments)?, halt())?,
            dispatched: runner(parts, DispatchedFollowUps::new(orders)?, halt())?,
        })
    }

    /// Spawns the runners `role` names into `tasks`.
    pub fn spawn(&self, role: &Role, mode: &RunMode, tasks: &mut Tasks) {
        spawn(&self.orders, role, mode, tasks);
        spawn(&self.sales, role, mode, tasks);
        spawn(&self.fulfilment_queue, role, mode, tasks);
        spawn(&self.notifier, role, mode, tasks);
        spawn(&self.paid, role, mode, tasks);
        spawn(&self.dispatched, role, mode, tasks);
    }

    /// What each consumer `role` names is doing (partitions held, last failure), by name.
    pub fn statuses(&self, role: &Role) -> Vec<(String, RunnerStatus)> {
        let all = [
            (self.orders.name(), self.orders.status()),
            (self.sales.name(), self.sales.status()),
            (self.fulfilment_queue.name(), self.fulfilment_queue.status()),
            (self.notifier.name(), self.notifier.status()),
            (self.paid.name(), self.paid.status()),
            (self.dispatched.name(), self.dispatched.status()),
        ];
        all.into_iter().filter(|(name, _)| role.runs(name)).map(|(name, s)| (name.to_owned(), s)).collect()
    }

    /// Measures the lag of each consumer `role` does not run and sets its gauges, and
    /// counts every consumer's parked dead letters (a failure is logged at debug level:
    /// the next sample tries again).
    pub async fn sample_gauges(&self, role: &Role) {
        export_lag(&self.orders, role).await;
        export_lag(&self.sales, role).await;
        export_lag(&self.fulfilment_queue, role).await;
        export_lag(&self.notifier, role).await;
        export_lag(&self.paid, role).await;
        export_lag(&self.dispatched, role).await;
    }

    /// The ops commands over `store`, with every runner and both codecs mounted (so
    /// `events verify` covers the v1 `OrderPlaced` events and the fulfilments).
    pub fn ops(&self, store: S) -> Result<Ops<S>, StartError>
    where
        S: LogDiagnostics,
    {
        Ok(Ops::new(store)
            .projection(self.orders.clone())
            .projection(self.sales.clone())
            .projection(self.fulfilment_queue.clone())
            .projection(self.notifier.clone())
            .projection(self.paid.clone())
            .projection(self.dispatched.clone())
            .codec(codec()?)
            .codec(fulfilment_codec()?))
    }
}

async fn export_lag<P, R, S, F>(runner: &ProjectionRunner<P, R, S, F>, role: &Role)
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    match runner.dead_letters().await {
        Ok(letters) => {
            let parked = letters.iter().filter(|letter| letter.status == DeadLetterStatus::Parked).count();
            metrics::gauge!(DEAD_LETTERS, "projection" => runner.name().to_owned()).set(parked as f64);
        }
        Err(error) => tracing::debug!(consumer = runner.name(), %error, "counting the dead letters failed"),
    }
    if role.runs(runner.name()) {
        return;
    }
    if let Err(error) = runner.export_lag().await {
        tracing::debug!(consumer = runner.name(), %error, "measuring the lag failed");
    }
}

pub(super) fn spawn<P, R, S, F>(runner: &ProjectionRunner<P, R, S, F>, role: &Role, mode: &RunMode, tasks: &mut Tasks)
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    if !role.runs(runner.name()) {
        return;
    }
    let (runner, mode) = (runner.clone(), mode.clone());
    tasks.spawn(
        format!("consumer {}", runner.name()),
        move |stop| async move { keep_running(&runner, &mode, stop).await },
    );
}

/// Runs until `stop`; failures retrying may fix (PostgreSQL or NATS unreachable while
/// preparing) are retried with backoff, others end the task.
async fn keep_running<P, R, S, F>(
    runner: &ProjectionRunner<P, R, S, F>,
    mode: &RunMode,
    stop: CancellationToken,
) -> Result<(), ProjectionError>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let mut delays = retry_delays();
    loop {
        let result = match mode {
            RunMode::InProcess => runner.run(stop.clone()).await,
            RunMode::Shared(coordination) => runner.run_shared(coordination.clone(), stop.clone()).await,
        };
        match result {
            Err(error) if error.is_retryable() && !stop.is_cancelled() => {
                let delay = delays.next().unwrap_or_default();
                tracing::warn!(consumer = runner.name(), %error, retry_in = ?delay, "a consumer could not start");
                if !pause(delay, &stop).await {
                    return Ok(());
                }
            }
            other => return other,
        }
    }
}

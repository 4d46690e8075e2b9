//! Starting the app, in either mode, through one code path: a [`Backend`] (store, read
//! models, the consumers' feed, how runners share partitions) builds the command
//! handlers, the consumers ([`Runners`]) and the app's state; only the backend differs.
//!
//! - [`start_embedded`]: `InMemoryEventStore`, an `InProcessBus` pumped from the store's
//!   log, `MemoryReadModels`, every partition in this process.
//! - [`PgDeployment`]: `PgEventStore`, a `NatsRelay` publishing the log to JetStream, a
//!   `JetStreamFeed`, `PgReadModels`, partitions shared between processes through
//!   PostgreSQL advisory locks (`run_shared` with `Coordination::postgres`). With
//!   [`FeedChoice::Postgres`], a `PgLogFeed` reading the store's log instead: no relay and
//!   no NATS.
//!
//! Which consumers a process runs is its [`Role`]: all of them (`orders`, `orders serve`, in
//! either mode), the notifier only (`serve --front`: it pushes to this process's
//! WebSockets), or the read models and the process manager (`projections run`). On
//! PostgreSQL + JetStream, `serve` and `projections run` also publish the order summaries
//! to a JetStream KV bucket ([`PgDeployment::spawn_summaries`]).

mod backend;
mod embedded;
mod error;
mod feed;
mod postgres;
mod runners;
mod summaries;
mod tasks;

pub use backend::{Backend, Background, ConsumerStatuses, Running, LAG_SAMPLE_EVERY};
pub use embedded::{embedded_backend, start_embedded, EmbeddedOptions};
pub use error::StartError;
pub use feed::{FeedChoice, OrdersFeed, OrdersSubscription};
pub use postgres::{
    start_postgres, PgDeployment, PgOptions, PgOrdersFeed, PgOrdersStore, PgServe, PgTenantOrdersStore,
};
pub use runners::{Handlers, Role, RunMode, Runners, BACK_CONSUMERS};
pub use summaries::SummaryRunner;
pub use tasks::{TaskFailure, Tasks};

//! The app: the store, the statements projection and the account commands, wired.

use std::sync::Arc;
use std::time::Duration;

use tidemark::{AppendOutcome, CommandError, CommandHandler, CommandOptions, EventCodec, LogPosition, StreamId};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{InProcessBus, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tokio_util::sync::CancellationToken;

use crate::account::{Account, AccountCommand};
use crate::statement::{self, Line, Statements};
use crate::Error;

type Runner = ProjectionRunner<Statements, PgReadModels, PgEventStore, InProcessBus>;

/// How long a command waits for its statement line (read-your-writes).
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// A bank in one PostgreSQL schema.
#[derive(Debug, Clone)]
pub struct Bank {
    store: PgEventStore,
    read_models: PgReadModels,
    accounts: Arc<CommandHandler<Account, PgEventStore>>,
    bus: InProcessBus,
    runner: Runner,
}

impl Bank {
    /// Connects to the database at `url`, in `schema`. Runs no DDL: see [`Bank::migrate`].
    pub async fn connect(url: &str, schema: &str) -> Result<Self, Error> {
        let store = PgEventStore::connect(url, PgStoreConfig::default().schema(schema)).await?;
        let read_models = PgReadModels::new(&store);
        let accounts = Arc::new(CommandHandler::new(store.clone(), Arc::new(EventCodec::without_upcasters()?)));
        let bus = InProcessBus::new(4)?;
        let runner = ProjectionRunner::new(
            Statements::new()?,
            read_models.clone(),
            store.clone(),
            bus.clone(),
            RunnerConfig::default(),
        )?;
        Ok(Self { store, read_models, accounts, bus, runner })
    }

    /// Applies the store's and the projection runtime's migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.store.migrate().await?;
        self.read_models.migrate().await?;
        Ok(())
    }

    /// Keeps the statements up to date until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), Error> {
        let pump = self.bus.pump(&self.store, LogPosition::START, shutdown.clone());
        let (pumped, ran) = tokio::join!(pump, self.runner.run(shutdown));
        pumped?;
        ran?;
        Ok(())
    }

    /// Opens an account for `owner`; returns its id.
    pub async fn open(&self, owner: &str) -> Result<StreamId, Error> {
        let id = StreamId::for_entity("account", uuid::Uuid::now_v7().simple())?;
        self.handle(&id, AccountCommand::Open { owner: owner.to_owned() }).await?;
        Ok(id)
    }

    /// Deposits `cents`.
    pub async fn deposit(&self, account: &StreamId, cents: i64, memo: &str) -> Result<(), Error> {
        self.handle(account, AccountCommand::Deposit { cents, memo: memo.to_owned() }).await
    }

    /// Withdraws `cents`; refused below zero.
    pub async fn withdraw(&self, account: &StreamId, cents: i64, memo: &str) -> Result<(), Error> {
        self.handle(account, AccountCommand::Withdraw { cents, memo: memo.to_owned() }).await
    }

    /// The account's statement.
    pub async fn statement(&self, account: &StreamId) -> Result<Vec<Line>, Error> {
        Ok(statement::lines(&self.read_models, account).await?)
    }

    /// The store.
    pub fn store(&self) -> &PgEventStore {
        &self.store
    }

    /// Handles a command, then waits until its events are on the statement, so a caller
    /// reads what it wrote.
    async fn handle(&self, account: &StreamId, command: AccountCommand) -> Result<(), Error> {
        let outcome: AppendOutcome = match self.accounts.handle(account, &command, &CommandOptions::new()).await {
            Ok(outcome) => outcome,
            Err(CommandError::Rejected(e)) => return Err(Error::Refused(e)),
            Err(e) => return Err(Error::Command(e)),
        };
        self.runner.wait_for_append(&outcome, READ_YOUR_WRITES).await?;
        Ok(())
    }
}

//! The intake service: takes orders and payments, and relays the store's log to JetStream.

use std::sync::Arc;

use tidemark::{AppendOutcome, CommandError, CommandHandler, CommandOptions, EventCodec, StreamId};
use tidemark_nats::{NatsRelay, RelayConfig, StreamSettings};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tokio_util::sync::CancellationToken;

use crate::domain::{Order, OrderCommand, OrderError};
use crate::{Error, Settings};

/// The intake service.
#[derive(Debug, Clone)]
pub struct Intake {
    store: PgEventStore,
    orders: Arc<CommandHandler<Order, PgEventStore>>,
    relay: NatsRelay,
}

impl Intake {
    /// Connects to PostgreSQL and NATS.
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let store =
            PgEventStore::connect(&settings.database_url, PgStoreConfig::default().schema(&settings.schema)).await?;
        let client = async_nats::connect(&settings.nats_url).await.map_err(|e| Error::Nats(e.to_string()))?;
        let relay = NatsRelay::new(store.clone(), client, RelayConfig::new("intake").subjects(settings.scheme()?))?;
        let orders = Arc::new(CommandHandler::new(store.clone(), Arc::new(EventCodec::without_upcasters()?)));
        Ok(Self { store, orders, relay })
    }

    /// Applies the store's migrations and creates (or updates) the JetStream stream.
    pub async fn migrate(&self, settings: &Settings) -> Result<(), Error> {
        self.store.migrate().await?;
        self.relay.ensure_stream(&StreamSettings::new(&settings.stream)).await?;
        Ok(())
    }

    /// Relays until `shutdown` (one relay of the name leads; others stand by).
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), Error> {
        Ok(self.relay.run(shutdown).await?)
    }

    /// Places an order; returns its id.
    pub async fn place(&self, total_cents: i64) -> Result<StreamId, Error> {
        let id = StreamId::for_entity("order", uuid::Uuid::now_v7().simple())?;
        self.handle(&id, OrderCommand::Place { total_cents }).await?;
        Ok(id)
    }

    /// Pays an order.
    pub async fn pay(&self, order: &StreamId) -> Result<AppendOutcome, Error> {
        self.handle(order, OrderCommand::Pay).await
    }

    /// The store.
    pub fn store(&self) -> &PgEventStore {
        &self.store
    }

    async fn handle(&self, order: &StreamId, command: OrderCommand) -> Result<AppendOutcome, Error> {
        match self.orders.handle(order, &command, &CommandOptions::new()).await {
            Ok(outcome) => Ok(outcome),
            Err(CommandError::Rejected(e)) => Err(Error::Refused(e)),
            Err(e) => Err(Error::Command(Box::new(e))),
        }
    }
}

impl From<OrderError> for Error {
    fn from(e: OrderError) -> Self {
        Error::Refused(e)
    }
}

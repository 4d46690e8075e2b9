//! The shipping service: consumes the order events from JetStream and requests a shipment
//! for every paid order, exactly once, however often an event is delivered.

use std::sync::Arc;
use std::time::Duration;

use tidemark::{AppendOutcome, CommandHandler, CommandOptions, Envelope, EventCodec, StreamId};
use tidemark_nats::{JetStreamFeed, MessageKey};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{ApplyError, PoisonPolicy, Projection, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{Coordination, PgReadModels, PgTx};
use tokio_util::sync::CancellationToken;

use crate::domain::{OrderEvent, Ship, Shipment};
use crate::{Error, Settings};

/// The shipment stream of an order: `shipment-<order id>`.
pub fn shipment_of(order: &StreamId) -> Result<StreamId, Error> {
    Ok(StreamId::new(format!("shipment-{}", order.as_str()))?)
}

/// The process manager: `OrderPaid` → `Ship`.
#[derive(Debug)]
pub struct ShipPaidOrders {
    codec: EventCodec<OrderEvent>,
    shipments: Arc<CommandHandler<Shipment, PgEventStore>>,
}

impl Projection<PgReadModels> for ShipPaidOrders {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        "ship-paid-orders"
    }

    fn codec(&self) -> &EventCodec<OrderEvent> {
        &self.codec
    }

    // Its commands are not undone with the batch: every batch is checked before `apply`.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, _tx: &mut PgTx, event: &Envelope<OrderEvent>) -> Result<(), ApplyError> {
        if let OrderEvent::Paid(_) = &event.event {
            // The command id comes from the event id: an event applied again (after a
            // crash, a redelivery) repeats the command, and the store answers it with the
            // first outcome.
            let options = CommandOptions::reacting_to(event, "ship");
            let ship = Ship { order: event.stream_id.to_string() };
            self.shipments.handle(&shipment_of(&event.stream_id)?, &ship, &options).await?;
        }
        Ok(())
    }
}

type Runner = ProjectionRunner<ShipPaidOrders, PgReadModels, PgEventStore, JetStreamFeed>;

/// The shipping service: run as many instances as needed; they share the partitions.
#[derive(Debug, Clone)]
pub struct Shipping {
    store: PgEventStore,
    read_models: PgReadModels,
    runner: Runner,
    schema: String,
}

impl Shipping {
    /// Connects to PostgreSQL and NATS. The store's migrations must have run (intake).
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let store =
            PgEventStore::connect(&settings.database_url, PgStoreConfig::default().schema(&settings.schema)).await?;
        let read_models = PgReadModels::new(&store);
        let client = async_nats::connect(&settings.nats_url).await.map_err(|e| Error::Nats(e.to_string()))?;
        let key = MessageKey::load(&store).await?;
        let jetstream = async_nats::jetstream::new(client);
        let feed = JetStreamFeed::new(jetstream, &settings.stream, settings.scheme()?).with_message_key(key);
        let shipments = Arc::new(CommandHandler::new(store.clone(), Arc::new(EventCodec::without_upcasters()?)));
        let process = ShipPaidOrders { codec: EventCodec::without_upcasters()?, shipments };
        // A shipment that keeps failing halts its partition (retried) rather than being
        // parked: no paid order goes unshipped.
        let config = RunnerConfig::default().poison(PoisonPolicy::Halt, 5);
        let runner = ProjectionRunner::new(process, read_models.clone(), store.clone(), feed, config)?;
        Ok(Self { store, read_models, runner, schema: settings.schema.clone() })
    }

    /// Applies the projection runtime's migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        Ok(self.read_models.migrate().await?)
    }

    /// Consumes until `shutdown`, sharing the partitions with the other instances.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), Error> {
        let coordination = Coordination::postgres(self.store.pool().clone(), &self.schema);
        Ok(self.runner.run_shared(coordination, shutdown).await?)
    }

    /// Waits until the service has acted on `outcome`'s events (whichever instance did).
    pub async fn wait_for(&self, outcome: &AppendOutcome, timeout: Duration) -> Result<(), Error> {
        Ok(self.runner.wait_for_append(outcome, timeout).await?)
    }
}

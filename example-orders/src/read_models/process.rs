//! The process manager, as two consumers of the feed: `OrderPaid` → request the order's
//! fulfilment; `FulfilmentDispatched` → ship the order. The decisions are the domain's
//! pure functions; the commands carry ids derived from the causing event, so handling a
//! redelivered event again records nothing new. A command the aggregate refuses is
//! logged and passed over; a store failure fails the batch, which is retried.

use std::sync::Arc;

use tidemark::trace::TraceContext;
use tidemark::{CommandError, CommandHandler, CommandOptions, Envelope, EventCodec, EventStore, Metadata};
use tidemark_projections::{ApplyError, Projection, ReadModels};

use crate::domain::{
    after_dispatched, after_paid, codec, fulfilment_codec, fulfilment_order_id, FollowUp, Fulfilment, FulfilmentEvent,
    Order, OrderEvent,
};

/// The name of the `OrderPaid` consumer.
pub const PAID_FOLLOW_UPS: &str = "pm-fulfilment";
/// The name of the `FulfilmentDispatched` consumer.
pub const DISPATCHED_FOLLOW_UPS: &str = "pm-shipping";

/// Handles a follow-up command caused by `event`.
async fn follow_up<A, S, E>(
    handler: &CommandHandler<A, S>,
    follow: FollowUp<A::Command>,
    event: &Envelope<E>,
) -> Result<(), ApplyError>
where
    A: tidemark::Aggregate,
    S: EventStore,
{
    let mut metadata = Metadata::new()
        .with_causation_id(event.event_id.0)
        .with_correlation_id(event.metadata.correlation_id.unwrap_or(event.event_id.0));
    // The follow-up's streams belong to the tenant of the event that caused it.
    metadata.tenant.clone_from(&event.metadata.tenant);
    // The command handler records a child of the event's trace context.
    if let Some(trace) = TraceContext::of_metadata(&event.metadata) {
        trace.record(&mut metadata);
    }
    let options = CommandOptions::new().id(follow.command_id).metadata(metadata);
    match handler.handle(&follow.stream, &follow.command, &options).await {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(reason)) => {
            tracing::warn!(stream = %follow.stream, %reason, "the process manager's command was refused");
            Ok(())
        }
        Err(error) => Err(Box::new(error)),
    }
}

/// `OrderPaid` → `FulfilmentCommand::Request`.
#[derive(Debug)]
pub struct PaidFollowUps<S: EventStore> {
    codec: EventCodec<OrderEvent>,
    orders: Arc<CommandHandler<Order, S>>,
    fulfilments: Arc<CommandHandler<Fulfilment, S>>,
}

impl<S: EventStore> PaidFollowUps<S> {
    /// The consumer, loading orders and handling fulfilment commands with these handlers.
    pub fn new(
        orders: Arc<CommandHandler<Order, S>>,
        fulfilments: Arc<CommandHandler<Fulfilment, S>>,
    ) -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: codec()?, orders, fulfilments })
    }
}

impl<S: EventStore + 'static, R: ReadModels> Projection<R> for PaidFollowUps<S> {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        PAID_FOLLOW_UPS
    }

    fn codec(&self) -> &EventCodec<OrderEvent> {
        &self.codec
    }

    /// Its commands are not undone with the batch.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, _tx: &mut R::Tx, event: &Envelope<OrderEvent>) -> Result<(), ApplyError> {
        let OrderEvent::Paid(paid) = &event.event else { return Ok(()) };
        let order_id = super::order_id(event)?;
        let order = self.orders.load(&event.stream_id).await?;
        match after_paid(order_id, &order.state, paid) {
            Some(follow) => follow_up(&self.fulfilments, follow, event).await,
            None => Ok(()),
        }
    }
}

/// `FulfilmentDispatched` → `OrderCommand::Ship`.
#[derive(Debug)]
pub struct DispatchedFollowUps<S: EventStore> {
    codec: EventCodec<FulfilmentEvent>,
    orders: Arc<CommandHandler<Order, S>>,
}

impl<S: EventStore> DispatchedFollowUps<S> {
    /// The consumer, handling order commands with `orders`.
    pub fn new(orders: Arc<CommandHandler<Order, S>>) -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: fulfilment_codec()?, orders })
    }
}

impl<S: EventStore + 'static, R: ReadModels> Projection<R> for DispatchedFollowUps<S> {
    type Event = FulfilmentEvent;

    fn name(&self) -> &str {
        DISPATCHED_FOLLOW_UPS
    }

    fn codec(&self) -> &EventCodec<FulfilmentEvent> {
        &self.codec
    }

    /// Its commands are not undone with the batch.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, _tx: &mut R::Tx, event: &Envelope<FulfilmentEvent>) -> Result<(), ApplyError> {
        let FulfilmentEvent::Dispatched(dispatched) = &event.event else { return Ok(()) };
        let order_id = fulfilment_order_id(&event.stream_id)
            .ok_or_else(|| format!("a fulfilment event in stream {}", event.stream_id))?;
        follow_up(&self.orders, after_dispatched(order_id, dispatched), event).await
    }
}

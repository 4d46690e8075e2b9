//! Order details (`orders`, key: order id) and each customer's order list
//! (`customer-orders`, key: `<customer>/<order id>`, listed by the prefix `<customer>/`),
//! kept by one projection so that both commit together.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark::{Aggregate, Envelope, EventCodec};
use tidemark_projections::{ApplyError, DocumentTx, Projection, ReadModels};
use uuid::Uuid;

use super::{happened_at, order_id};
use crate::domain::{codec, Currency, Order, OrderEvent, OrderStatus};

/// The projection's name; read-your-writes waits name it.
pub const ORDERS: &str = "orders";
/// The collection of customers' order lists.
pub const CUSTOMER_ORDERS: &str = "customer-orders";

/// An order as `GET /orders/{id}` shows it: the aggregate's state plus bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order's id.
    pub order_id: Uuid,
    /// The stream version this view includes.
    pub version: u64,
    /// The order total in minor units.
    pub total_minor: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Status, customer, currency, lines, payment id, tracking, cancel reason.
    #[serde(flatten)]
    pub state: Order,
}

/// One entry of a customer's order list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The order's id.
    pub order_id: Uuid,
    /// Where it is in its life cycle.
    pub status: OrderStatus,
    /// Its currency.
    pub currency: Option<Currency>,
    /// Its total in minor units.
    pub total_minor: i64,
    /// How many lines it holds.
    pub lines: usize,
    /// The stream version this entry includes.
    pub version: u64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl OrderView {
    /// The view of order `order_id` after `event`, from the view before it (none before
    /// the order's first event).
    pub fn evolved(view: Option<Self>, order_id: Uuid, event: &Envelope<OrderEvent>) -> Self {
        let at = happened_at(event);
        let mut view = view.unwrap_or_else(|| Self {
            order_id,
            version: 0,
            total_minor: 0,
            placed_at: at,
            updated_at: at,
            state: Order::default(),
        });
        view.state.evolve(&event.event);
        view.version = event.stream_version.0;
        view.total_minor = view.state.total_minor();
        view.updated_at = at;
        view
    }

    /// The list entry for this order.
    pub fn summary(&self) -> OrderSummary {
        OrderSummary {
            order_id: self.order_id,
            status: self.state.status(),
            currency: self.state.currency(),
            total_minor: self.total_minor,
            lines: self.state.lines().len(),
            version: self.version,
            placed_at: self.placed_at,
            updated_at: self.updated_at,
        }
    }
}

/// Keeps [`ORDERS`] and [`CUSTOMER_ORDERS`].
#[derive(Debug)]
pub struct OrdersProjection {
    codec: EventCodec<OrderEvent>,
}

impl OrdersProjection {
    /// The projection, with the order codec (and its v1 upcaster).
    pub fn new() -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: codec()? })
    }
}

impl<R> Projection<R> for OrdersProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = OrderEvent;

    fn name(&self) -> &str {
        ORDERS
    }

    fn codec(&self) -> &EventCodec<OrderEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<OrderEvent>) -> Result<(), ApplyError> {
        let id = order_id(event)?;
        let key = id.to_string();
        let view = OrderView::evolved(tx.get_as::<OrderView>(ORDERS, &key).await?, id, event);
        tx.put_as(ORDERS, &key, &view).await?;
        let customer_key = format!("{}/{key}", view.state.customer());
        tx.put_as(CUSTOMER_ORDERS, &customer_key, &view.summary()).await
    }
}

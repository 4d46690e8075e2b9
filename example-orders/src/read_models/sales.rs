//! Sales per product per day (`sales`, key `<product>/<yyyy-mm-dd>`): units and revenue
//! of paid orders, on the day of the payment (the original day for imported events). A
//! paid order cancelled later is taken off its payment day again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tidemark::{Aggregate, Envelope, EventCodec};
use tidemark_projections::{ApplyError, DocumentTx, Projection, ReadModels};

use super::{happened_at, order_id};
use crate::domain::{codec, Order, OrderEvent};

/// The projection's name and its collection.
pub const SALES: &str = "sales";
/// The projection's own state per open order: its lines, and its payment day once paid.
const SALES_ORDERS: &str = "sales-orders";

/// One product's sales on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesDay {
    /// The product.
    pub product: String,
    /// The day (UTC), `yyyy-mm-dd`.
    pub day: String,
    /// Units sold.
    pub quantity: i64,
    /// Revenue per currency, in minor units.
    pub revenue_minor: BTreeMap<String, i64>,
    /// Orders that included the product.
    pub orders: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OpenOrder {
    state: Order,
    paid_day: Option<String>,
}

/// Keeps [`SALES`].
#[derive(Debug)]
pub struct SalesProjection {
    codec: EventCodec<OrderEvent>,
}

impl SalesProjection {
    /// The projection, with the order codec.
    pub fn new() -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: codec()? })
    }
}

/// Adds (`sign` 1) or takes off (`sign` -1) an order's lines on a day.
async fn book<T: DocumentTx>(tx: &mut T, order: &Order, day: &str, sign: i64) -> Result<(), ApplyError> {
    let currency = order.currency().map(|c| c.to_string()).unwrap_or_default();
    for line in order.lines() {
        let key = format!("{}/{day}", line.product);
        let mut sales: SalesDay = tx.get_as(SALES, &key).await?.unwrap_or_else(|| SalesDay {
            product: line.product.clone(),
            day: day.to_owned(),
            ..SalesDay::default()
        });
        sales.quantity += sign * i64::from(line.quantity);
        sales.orders += sign;
        *sales.revenue_minor.entry(currency.clone()).or_default() += sign * line.total_minor().unwrap_or(0);
        tx.put_as(SALES, &key, &sales).await?;
    }
    Ok(())
}

impl<R> Projection<R> for SalesProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = OrderEvent;

    fn name(&self) -> &str {
        SALES
    }

    fn codec(&self) -> &EventCodec<OrderEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<OrderEvent>) -> Result<(), ApplyError> {
        let key = order_id(event)?.to_string();
        let mut open: OpenOrder = tx.get_as(SALES_ORDERS, &key).await?.unwrap_or_default();
        open.state.evolve(&event.event);
        match &event.event {
            OrderEvent::Paid(_) => {
                let day = happened_at(event).format("%Y-%m-%d").to_string();
                book(tx, &open.state, &day, 1).await?;
                open.paid_day = Some(day);
            }
            OrderEvent::Cancelled(_) => {
                if let Some(day) = &open.paid_day {
                    book(tx, &open.state, day, -1).await?;
                }
            }
            _ => {}
        }
        if open.state.status().is_final() {
            // Nothing can change the order's sales any more.
            tx.delete(SALES_ORDERS, &key).await
        } else {
            tx.put_as(SALES_ORDERS, &key, &open).await
        }
    }
}

//! The read models, written against the document API so they run in memory and on
//! PostgreSQL alike, and the process manager, which runs as a consumer of the same feed.

mod fulfilment_queue;
mod notifier;
mod orders;
mod process;
mod sales;
mod summaries;

use chrono::{DateTime, Utc};
use tidemark::Envelope;

use crate::domain::RECORDED_AT_HEADER;

pub use fulfilment_queue::{FulfilmentQueueProjection, QueuedFulfilment, FULFILMENT_QUEUE};
pub use notifier::{NotifierProjection, NOTIFIER};
pub use orders::{OrderSummary, OrderView, OrdersProjection, CUSTOMER_ORDERS, ORDERS};
pub use process::{DispatchedFollowUps, PaidFollowUps, DISPATCHED_FOLLOW_UPS, PAID_FOLLOW_UPS};
pub use sales::{SalesDay, SalesProjection, SALES};
pub use summaries::{summarise, ORDER_SUMMARIES};

/// When an event happened: the original time of an imported event (its
/// [`RECORDED_AT_HEADER`]), otherwise when the store recorded it.
pub fn happened_at<E>(event: &Envelope<E>) -> DateTime<Utc> {
    event
        .metadata
        .headers
        .get(RECORDED_AT_HEADER)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or(event.recorded_at, |at| at.with_timezone(&Utc))
}

/// The order id of an order event's stream; an event elsewhere is a bug worth failing on.
fn order_id<E>(event: &Envelope<E>) -> Result<uuid::Uuid, tidemark_projections::ApplyError> {
    crate::domain::order_id_of(&event.stream_id)
        .ok_or_else(|| format!("an order event in stream {} which is not an order stream", event.stream_id).into())
}

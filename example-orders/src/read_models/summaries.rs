//! The order summaries published to a JetStream KV bucket for other services to read
//! (PostgreSQL + JetStream deployment only): key `order-<id>`, the order's stream id,
//! holds the order's [`OrderView`] as JSON, the same document `GET /orders/{id}` shows.

use tidemark::Envelope;

use super::OrderView;
use crate::domain::{order_id_of, OrderEvent};

/// The KV projection's name (its consumer, checkpoints and dead letters).
pub const ORDER_SUMMARIES: &str = "order_summaries";

/// The pure function of the KV projection: the order's view after `event`. An event of a
/// stream that is not an order's (never handed to it: the codec reads order events only)
/// leaves the document as it was.
pub fn summarise(view: Option<OrderView>, event: &Envelope<OrderEvent>) -> Option<OrderView> {
    match order_id_of(&event.stream_id) {
        Some(order_id) => Some(OrderView::evolved(view, order_id, event)),
        None => view,
    }
}

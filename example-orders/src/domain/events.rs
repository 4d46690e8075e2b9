//! What an order records, in the past tense.
//!
//! `OrderPlaced` is at schema version 2: version 1, written by the first release, had
//! decimal-string prices and no currency (see [`codec`](super::codec)). The other
//! events have not changed shape since they were introduced.

use serde::{Deserialize, Serialize};

use super::currency::Currency;
use super::line::Line;

/// The order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Who ordered.
    pub customer: String,
    /// The lines as placed.
    pub lines: Vec<Line>,
    /// The currency of every price in the order.
    pub currency: Currency,
    /// Where to deliver, if given: personal data of the customer, stored sealed with the
    /// customer's key (see [`personal_data`](crate::domain::personal_data)). Absent in
    /// events written before it existed.
    #[serde(default)]
    pub delivery: Option<Delivery>,
}

/// A delivery contact: personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The recipient's name.
    pub name: String,
    /// The postal address.
    pub address: String,
}

/// A line was added to a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineAdded {
    /// The new line.
    pub line: Line,
}

/// A product's line was removed from a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRemoved {
    /// The product whose line went.
    pub product: String,
}

/// The customer confirmed the order; its lines are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {}

/// The order was paid in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// The payment provider's id of the payment.
    pub payment_id: String,
    /// The amount paid, in minor units: the order total.
    pub amount_minor: i64,
}

/// The order was handed to the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    /// The carrier's tracking number.
    pub tracking: String,
}

/// The order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Why.
    pub reason: String,
}

tidemark::domain_events! {
    /// Every event of an order, with its stable type name and current schema version.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum OrderEvent {
        /// See [`OrderPlaced`].
        Placed(OrderPlaced) = ("OrderPlaced", 2),
        /// See [`LineAdded`].
        LineAdded(LineAdded) = ("LineAdded", 1),
        /// See [`LineRemoved`].
        LineRemoved(LineRemoved) = ("LineRemoved", 1),
        /// See [`OrderConfirmed`].
        Confirmed(OrderConfirmed) = ("OrderConfirmed", 1),
        /// See [`OrderPaid`].
        Paid(OrderPaid) = ("OrderPaid", 1),
        /// See [`OrderShipped`].
        Shipped(OrderShipped) = ("OrderShipped", 1),
        /// See [`OrderCancelled`].
        Cancelled(OrderCancelled) = ("OrderCancelled", 1),
    }
}

//! Two aggregates: orders (the intake service's) and shipments (the shipping service's).

use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

/// An order was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Its total, in cents.
    pub total_cents: i64,
}

/// An order was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// The amount paid, in cents.
    pub total_cents: i64,
}

tidemark::domain_events! {
    /// What happens to an order.
    #[derive(Debug, Clone, PartialEq)]
    pub enum OrderEvent {
        /// Placed by a customer.
        Placed(OrderPlaced) = ("OrderPlaced", 1),
        /// Paid in full.
        Paid(OrderPaid) = ("OrderPaid", 1),
    }
}

/// What an order can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it.
    Place {
        /// Its total, in cents.
        total_cents: i64,
    },
    /// Pay it.
    Pay,
}

/// Why an order refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Placed twice.
    #[error("the order was already placed")]
    AlreadyPlaced,
    /// Not placed yet.
    #[error("no such order")]
    NotPlaced,
    /// Paid twice.
    #[error("the order was already paid")]
    AlreadyPaid,
}

/// The state an order's decisions need.
#[derive(Debug, Default)]
pub struct Order {
    total_cents: Option<i64>,
    paid: bool,
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match (command, self.total_cents) {
            (OrderCommand::Place { .. }, Some(_)) => Err(OrderError::AlreadyPlaced),
            (OrderCommand::Place { total_cents }, None) => Ok(vec![OrderPlaced { total_cents: *total_cents }.into()]),
            (OrderCommand::Pay, None) => Err(OrderError::NotPlaced),
            (OrderCommand::Pay, Some(_)) if self.paid => Err(OrderError::AlreadyPaid),
            (OrderCommand::Pay, Some(total_cents)) => Ok(vec![OrderPaid { total_cents }.into()]),
        }
    }

    fn evolve(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed(e) => self.total_cents = Some(e.total_cents),
            OrderEvent::Paid(_) => self.paid = true,
        }
    }
}

/// A shipment was requested for an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentRequested {
    /// The order's stream id.
    pub order: String,
}

tidemark::domain_events! {
    /// What happens to a shipment.
    #[derive(Debug, Clone, PartialEq)]
    pub enum ShipmentEvent {
        /// Asked for by the pipeline once its order was paid.
        Requested(ShipmentRequested) = ("ShipmentRequested", 1),
    }
}

/// Ship the order named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ship {
    /// The order's stream id.
    pub order: String,
}

/// Why a shipment refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShipmentError {
    /// Requested twice (the process manager's command ids keep this from happening).
    #[error("the shipment was already requested")]
    AlreadyRequested,
}

/// A shipment: one per paid order.
#[derive(Debug, Default)]
pub struct Shipment {
    requested: bool,
}

impl Aggregate for Shipment {
    const CATEGORY: &'static str = "shipment";
    type Command = Ship;
    type Event = ShipmentEvent;
    type Error = ShipmentError;

    fn decide(&self, command: &Ship) -> Result<Vec<ShipmentEvent>, ShipmentError> {
        if self.requested {
            return Err(ShipmentError::AlreadyRequested);
        }
        Ok(vec![ShipmentRequested { order: command.order.clone() }.into()])
    }

    fn evolve(&mut self, _: &ShipmentEvent) {
        self.requested = true;
    }
}

//! The `Fulfilment` aggregate: the warehouse's side of a paid order.
//!
//! One fulfilment per order, in stream `fulfilment-<order id>`. The process manager
//! requests it when an order is paid; the warehouse dispatches it with a tracking
//! number, which the process manager turns into the order's `Ship` command.

use serde::{Deserialize, Serialize};
use tidemark::Aggregate;
use uuid::Uuid;

/// One product to pick and pack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FulfilmentLine {
    /// The product id.
    pub product: String,
    /// How many units.
    pub quantity: u32,
}

/// A command for the [`Fulfilment`] aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FulfilmentCommand {
    /// Requests the fulfilment of a paid order. Requesting again for the same order
    /// records nothing.
    Request {
        /// The order to fulfil.
        order_id: Uuid,
        /// What to pick and pack; at least one line.
        lines: Vec<FulfilmentLine>,
    },
    /// Records that the parcel left the warehouse.
    Dispatch {
        /// The carrier's tracking number; not blank.
        tracking: String,
    },
}

/// Fulfilment of an order was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentRequested {
    /// The order to fulfil.
    pub order_id: Uuid,
    /// What to pick and pack.
    pub lines: Vec<FulfilmentLine>,
}

/// The parcel left the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentDispatched {
    /// The carrier's tracking number.
    pub tracking: String,
}

tidemark::domain_events! {
    /// Every event of a fulfilment.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FulfilmentEvent {
        /// See [`FulfilmentRequested`].
        Requested(FulfilmentRequested) = ("FulfilmentRequested", 1),
        /// See [`FulfilmentDispatched`].
        Dispatched(FulfilmentDispatched) = ("FulfilmentDispatched", 1),
    }
}

/// Why the [`Fulfilment`] aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FulfilmentError {
    /// A fulfilment is requested with at least one line.
    #[error("a fulfilment needs at least one line")]
    NoLines,
    /// This fulfilment was requested for another order.
    #[error("this fulfilment belongs to order {order_id}")]
    OtherOrder {
        /// The order it was requested for.
        order_id: Uuid,
    },
    /// Nothing can be dispatched before the fulfilment is requested.
    #[error("the fulfilment has not been requested")]
    NotRequested,
    /// The parcel was dispatched already.
    #[error("the fulfilment has already been dispatched")]
    AlreadyDispatched,
    /// The tracking number is blank.
    #[error("a tracking number is required")]
    TrackingRequired,
}

/// A fulfilment, as rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfilment {
    order_id: Option<Uuid>,
    lines: Vec<FulfilmentLine>,
    tracking: Option<String>,
}

impl Aggregate for Fulfilment {
    const CATEGORY: &'static str = "fulfilment";
    type Command = FulfilmentCommand;
    type Event = FulfilmentEvent;
    type Error = FulfilmentError;

    fn decide(&self, command: &FulfilmentCommand) -> Result<Vec<FulfilmentEvent>, FulfilmentError> {
        match command {
            FulfilmentCommand::Request { order_id, lines } => self.request(*order_id, lines),
            FulfilmentCommand::Dispatch { tracking } => self.dispatch(tracking),
        }
    }

    fn evolve(&mut self, event: &FulfilmentEvent) {
        match event {
            FulfilmentEvent::Requested(e) => {
                self.order_id = Some(e.order_id);
                self.lines.clone_from(&e.lines);
            }
            FulfilmentEvent::Dispatched(e) => self.tracking = Some(e.tracking.clone()),
        }
    }

    fn creates_stream(command: &FulfilmentCommand) -> bool {
        matches!(command, FulfilmentCommand::Request { .. })
    }
}

impl Fulfilment {
    fn request(&self, order_id: Uuid, lines: &[FulfilmentLine]) -> Result<Vec<FulfilmentEvent>, FulfilmentError> {
        match self.order_id {
            Some(requested) if requested == order_id => Ok(Vec::new()),
            Some(requested) => Err(FulfilmentError::OtherOrder { order_id: requested }),
            None if lines.is_empty() => Err(FulfilmentError::NoLines),
            None => Ok(vec![FulfilmentRequested { order_id, lines: lines.to_vec() }.into()]),
        }
    }

    fn dispatch(&self, tracking: &str) -> Result<Vec<FulfilmentEvent>, FulfilmentError> {
        if tracking.trim().is_empty() {
            return Err(FulfilmentError::TrackingRequired);
        }
        match (self.order_id, &self.tracking) {
            (None, _) => Err(FulfilmentError::NotRequested),
            (Some(_), Some(_)) => Err(FulfilmentError::AlreadyDispatched),
            (Some(_), None) => Ok(vec![FulfilmentDispatched { tracking: tracking.to_owned() }.into()]),
        }
    }

    /// The order this fulfilment is for, once requested.
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }

    /// What to pick and pack.
    pub fn lines(&self) -> &[FulfilmentLine] {
        &self.lines
    }

    /// The tracking number, once dispatched.
    pub fn tracking(&self) -> Option<&str> {
        self.tracking.as_deref()
    }
}

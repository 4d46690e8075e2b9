//! The JSON bodies of the command endpoints, and the commands they become.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::domain::{Currency, Delivery, FulfilmentCommand, Line, OrderCommand};
use crate::error::ApiError;

/// `POST /orders`.
#[derive(Debug, Deserialize)]
pub(super) struct PlaceBody {
    currency: String,
    lines: Vec<Line>,
    /// Where to deliver (optional; personal data of the customer).
    #[serde(default)]
    delivery: Option<Delivery>,
}

impl PlaceBody {
    /// The command placing the order for `customer`; an unknown currency is a 422.
    pub(super) fn command(self, customer: String) -> Result<OrderCommand, ApiError> {
        let currency = Currency::new(&self.currency).map_err(|e| ApiError::Invalid(e.to_string()))?;
        Ok(OrderCommand::Place { customer, lines: self.lines, currency, delivery: self.delivery })
    }
}

/// The body of a command on an existing order whose only parameter is its body: what the
/// command is called (in outcomes and logs) and the command it becomes.
pub(super) trait OrderBody: DeserializeOwned + Send + 'static {
    /// The command's name.
    const KIND: &'static str;
    /// The command the body asks for.
    fn command(self) -> OrderCommand;
}

/// `POST /orders/{id}/lines`: the line to add.
impl OrderBody for Line {
    const KIND: &'static str = "add_line";
    fn command(self) -> OrderCommand {
        OrderCommand::AddLine { line: self }
    }
}

/// `POST /orders/{id}/confirm`: empty, or any JSON object (its fields are ignored).
#[derive(Debug, Deserialize)]
pub(super) struct ConfirmBody {}

impl OrderBody for ConfirmBody {
    const KIND: &'static str = "confirm";
    fn command(self) -> OrderCommand {
        OrderCommand::Confirm
    }
}

/// `POST /orders/{id}/pay`.
#[derive(Debug, Deserialize)]
pub(super) struct PayBody {
    payment_id: String,
    amount_minor: i64,
}

impl OrderBody for PayBody {
    const KIND: &'static str = "pay";
    fn command(self) -> OrderCommand {
        let PayBody { payment_id, amount_minor } = self;
        OrderCommand::Pay { payment_id, amount_minor }
    }
}

/// `POST /orders/{id}/ship`.
#[derive(Debug, Deserialize)]
pub struct ShipBody {
    tracking: String,
}

impl From<ShipBody> for OrderCommand {
    fn from(ShipBody { tracking }: ShipBody) -> Self {
        Self::Ship { tracking }
    }
}

/// `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize)]
pub(super) struct CancelBody {
    reason: String,
}

impl OrderBody for CancelBody {
    const KIND: &'static str = "cancel";
    fn command(self) -> OrderCommand {
        OrderCommand::Cancel { reason: self.reason }
    }
}

/// `POST /fulfilments/{order_id}/dispatch`.
#[derive(Debug, Deserialize)]
pub struct DispatchBody {
    tracking: String,
}

impl From<DispatchBody> for FulfilmentCommand {
    fn from(DispatchBody { tracking }: DispatchBody) -> Self {
        Self::Dispatch { tracking }
    }
}

/// The body of a command that takes no parameters: empty, or any JSON object (its
/// fields are ignored).
#[derive(Debug, Deserialize)]
pub(super) struct NoBody {}

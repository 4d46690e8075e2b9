//! The JSON bodies of the command endpoints, and the commands they become.

use serde::Deserialize;

use crate::domain::{Currency, FulfilmentCommand, Line, OrderCommand};
use crate::error::ApiError;

/// `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct PlaceBody {
    currency: String,
    lines: Vec<Line>,
}

impl PlaceBody {
    /// The command placing the order for `customer`; an unknown currency is a 422.
    pub fn command(self, customer: String) -> Result<OrderCommand, ApiError> {
        let currency = Currency::new(&self.currency).map_err(|e| ApiError::Invalid(e.to_string()))?;
        Ok(OrderCommand::Place { customer, lines: self.lines, currency })
    }
}

/// `POST /orders/{id}/pay`.
#[derive(Debug, Deserialize)]
pub struct PayBody {
    payment_id: String,
    amount_minor: i64,
}

impl From<PayBody> for OrderCommand {
    fn from(PayBody { payment_id, amount_minor }: PayBody) -> Self {
        Self::Pay { payment_id, amount_minor }
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
pub struct CancelBody {
    reason: String,
}

impl From<CancelBody> for OrderCommand {
    fn from(CancelBody { reason }: CancelBody) -> Self {
        Self::Cancel { reason }
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
pub struct NoBody {}

//! What an order can be asked to do.

use super::currency::Currency;
use super::events::Delivery;
use super::line::Line;

/// A command for the [`Order`](super::Order) aggregate.
///
/// Everything from outside (prices, payment ids, tracking numbers) arrives inside the
/// command, so deciding needs no clock, database or network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Places the order: once, with at least one line.
    Place {
        /// Who orders; 1 to [`MAX_CUSTOMER_CHARS`] characters.
        customer: String,
        /// The lines, each for a different product.
        lines: Vec<Line>,
        /// The currency of every price in the order.
        currency: Currency,
        /// Where to deliver, if given (personal data).
        delivery: Option<Delivery>,
    },
    /// Adds a line for a product the order does not hold yet, while it is only placed.
    AddLine {
        /// The new line.
        line: Line,
    },
    /// Removes a product's line, while the order is only placed; never the last line.
    RemoveLine {
        /// The product whose line goes.
        product: String,
    },
    /// Confirms a placed order: its lines are final.
    Confirm,
    /// Records the payment of a confirmed order. Paying again with the same payment id
    /// records nothing; with another id it is refused.
    Pay {
        /// The payment provider's id of the payment; 1 to [`MAX_REFERENCE_CHARS`] characters.
        payment_id: String,
        /// The amount paid in minor units; must equal the order total.
        amount_minor: i64,
    },
    /// Ships a paid order.
    Ship {
        /// The carrier's tracking number; 1 to [`MAX_REFERENCE_CHARS`] characters.
        tracking: String,
    },
    /// Cancels an order that has not been shipped.
    Cancel {
        /// Why; 1 to [`MAX_REASON_CHARS`] characters.
        reason: String,
    },
}

/// Longest customer reference, in characters.
pub const MAX_CUSTOMER_CHARS: usize = 128;
/// The longest delivery name or address, in characters.
pub const MAX_DELIVERY_CHARS: usize = 256;
/// Longest payment id or tracking number, in characters.
pub const MAX_REFERENCE_CHARS: usize = 128;
/// Longest cancellation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Most lines an order holds.
pub const MAX_LINES: usize = 100;

//! Why an order refuses a command.

use super::status::OrderStatus;

/// Why the [`Order`](super::Order) aggregate refused a command. Nothing is recorded then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The order was placed already: an order is placed once.
    #[error("the order has already been placed")]
    AlreadyPlaced,
    /// The order has not been placed yet, so there is nothing to act on.
    #[error("the order has not been placed")]
    NotPlaced,
    /// An order is placed with at least one line.
    #[error("an order needs at least one line")]
    NoLines,
    /// The order would hold more lines than allowed.
    #[error("an order holds at most {max} lines")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// A required text field is empty or only whitespace.
    #[error("{field} is required")]
    Required {
        /// The field's name.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} is at most {max} characters long")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// The currency is not three upper-case ASCII letters.
    #[error("{code:?} is not a currency code (three upper-case letters, such as EUR)")]
    InvalidCurrency {
        /// The rejected code.
        code: String,
    },
    /// A line has a quantity of zero.
    #[error("the quantity of {product:?} is zero; it is at least 1")]
    ZeroQuantity {
        /// The line's product.
        product: String,
    },
    /// A line has a negative unit price.
    #[error("the unit price of {product:?} is negative")]
    NegativePrice {
        /// The line's product.
        product: String,
    },
    /// Two lines would be for the same product.
    #[error("the order already has a line for {product:?}")]
    DuplicateProduct {
        /// The repeated product.
        product: String,
    },
    /// No line of the order is for this product.
    #[error("the order has no line for {product:?}")]
    UnknownProduct {
        /// The product asked for.
        product: String,
    },
    /// The last line cannot be removed; cancel the order instead.
    #[error("the last line cannot be removed; cancel the order instead")]
    LastLine,
    /// The order total would not fit in a 64-bit count of minor units.
    #[error("the order total is too large")]
    TotalOverflow,
    /// Lines change only while the order is placed, before it is confirmed.
    #[error("the lines of a {status} order cannot change")]
    NotModifiable {
        /// The order's status.
        status: OrderStatus,
    },
    /// Only a placed order can be confirmed.
    #[error("a {status} order cannot be confirmed")]
    NotConfirmable {
        /// The order's status.
        status: OrderStatus,
    },
    /// Only a confirmed order can be paid.
    #[error("a {status} order cannot be paid")]
    NotPayable {
        /// The order's status.
        status: OrderStatus,
    },
    /// The order was paid already, under another payment id.
    #[error("the order has already been paid with another payment")]
    AlreadyPaid,
    /// The amount paid is not the order total.
    #[error("the payment of {offered_minor} does not match the order total of {expected_minor} (minor units)")]
    AmountMismatch {
        /// The order total, in minor units.
        expected_minor: i64,
        /// The amount offered, in minor units.
        offered_minor: i64,
    },
    /// Only a paid order can be shipped.
    #[error("a {status} order cannot be shipped")]
    NotShippable {
        /// The order's status.
        status: OrderStatus,
    },
    /// A shipped order cannot be cancelled.
    #[error("the order has been shipped and cannot be cancelled")]
    AlreadyShipped,
    /// The order is cancelled already.
    #[error("the order has already been cancelled")]
    AlreadyCancelled,
}

/// Checks that `value` is not blank and has at most `max` characters.
pub(crate) fn require_text(field: &'static str, value: &str, max: usize) -> Result<(), OrderError> {
    if value.trim().is_empty() {
        return Err(OrderError::Required { field });
    }
    if value.chars().count() > max {
        return Err(OrderError::TooLong { field, max });
    }
    Ok(())
}

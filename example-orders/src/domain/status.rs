//! The life cycle of an order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an order is in its life cycle.
///
/// `placed → confirmed → paid → shipped`, and `cancelled` from any of the first three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Nothing has been recorded for the order: it does not exist yet.
    #[default]
    Unplaced,
    /// Placed; lines may still change.
    Placed,
    /// Confirmed by the customer; waiting for payment.
    Confirmed,
    /// Paid; waiting to be shipped.
    Paid,
    /// Handed to the carrier. Final.
    Shipped,
    /// Cancelled. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [Self; 6] =
        [Self::Unplaced, Self::Placed, Self::Confirmed, Self::Paid, Self::Shipped, Self::Cancelled];

    /// The status as a lower-case word, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unplaced => "unplaced",
            Self::Placed => "placed",
            Self::Confirmed => "confirmed",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether nothing can happen to the order any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_serialised_form() {
        for status in OrderStatus::ALL {
            assert_eq!(serde_json::to_value(status).ok(), Some(status.as_str().into()));
        }
    }
}

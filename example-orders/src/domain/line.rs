//! Order lines and their money arithmetic, in integer minor units.

use serde::{Deserialize, Serialize};

use super::error::{require_text, OrderError};

/// Longest product id, in characters.
pub const MAX_PRODUCT_CHARS: usize = 64;

/// One line of an order: a product, how many, and the unit price in minor units
/// (cents for EUR). The currency is the order's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Line {
    /// The product id: 1 to [`MAX_PRODUCT_CHARS`] characters, not blank.
    pub product: String,
    /// How many units; at least 1.
    pub quantity: u32,
    /// The price of one unit in minor units; never negative.
    pub unit_price_minor: i64,
}

impl Line {
    /// Builds a line; see [`Line::validate`] for the rules.
    pub fn new(product: impl Into<String>, quantity: u32, unit_price_minor: i64) -> Self {
        Self { product: product.into(), quantity, unit_price_minor }
    }

    /// Checks the product id, the quantity and the price.
    pub fn validate(&self) -> Result<(), OrderError> {
        require_text("product", &self.product, MAX_PRODUCT_CHARS)?;
        if self.quantity == 0 {
            return Err(OrderError::ZeroQuantity { product: self.product.clone() });
        }
        if self.unit_price_minor < 0 {
            return Err(OrderError::NegativePrice { product: self.product.clone() });
        }
        Ok(())
    }

    /// Quantity times unit price, or `None` if it does not fit in an `i64`.
    pub fn total_minor(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// The sum of the lines' totals, or `None` if it does not fit in an `i64`.
pub fn lines_total(lines: &[Line]) -> Option<i64> {
    lines.iter().try_fold(0i64, |sum, line| sum.checked_add(line.total_minor()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_exact_and_overflow_is_none() {
        let lines = [Line::new("tea", 3, 675), Line::new("pot", 1, 3500)];
        assert_eq!(lines_total(&lines), Some(5525));
        assert_eq!(lines_total(&[]), Some(0));
        assert_eq!(Line::new("gold", u32::MAX, i64::MAX / 2).total_minor(), None);
        assert_eq!(lines_total(&[Line::new("a", 1, i64::MAX), Line::new("b", 1, 1)]), None);
    }

    #[test]
    fn validation() {
        assert_eq!(Line::new("tea", 1, 0).validate(), Ok(()));
        assert_eq!(Line::new("x".repeat(MAX_PRODUCT_CHARS), 1, 0).validate(), Ok(()));
        let too_long = Line::new("x".repeat(MAX_PRODUCT_CHARS + 1), 1, 0);
        assert_eq!(too_long.validate(), Err(OrderError::TooLong { field: "product", max: MAX_PRODUCT_CHARS }));
        assert_eq!(Line::new(" ", 1, 0).validate(), Err(OrderError::Required { field: "product" }));
        assert_eq!(Line::new("tea", 0, 1).validate(), Err(OrderError::ZeroQuantity { product: "tea".into() }));
        assert_eq!(Line::new("tea", 1, -1).validate(), Err(OrderError::NegativePrice { product: "tea".into() }));
    }
}

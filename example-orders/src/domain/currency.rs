//! ISO 4217-style currency codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::OrderError;

/// A currency code: exactly three ASCII upper-case letters, such as `EUR`.
///
/// Validated when built, so a command or event never holds a malformed code.
///
/// ```
/// use example_orders::domain::Currency;
/// assert_eq!(Currency::new("USD")?.as_str(), "USD");
/// assert!(Currency::new("usd").is_err());
/// # Ok::<(), example_orders::domain::OrderError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro, implied by every order of the first release.
    pub const EUR: Self = Self(*b"EUR");

    /// Validates a code.
    pub fn new(code: &str) -> Result<Self, OrderError> {
        match <[u8; 3]>::try_from(code.as_bytes()) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Self(bytes)),
            _ => Err(OrderError::InvalidCurrency { code: code.to_owned() }),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII: every constructor checks it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = OrderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = OrderError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_three_upper_case_letters() {
        for code in ["EUR", "USD", "CHF", "JPY"] {
            assert_eq!(Currency::new(code).map(|c| c.to_string()), Ok(code.to_owned()));
        }
        assert_eq!(Currency::new("EUR"), Ok(Currency::EUR));
    }

    #[test]
    fn rejects_anything_else() {
        for code in ["", "EU", "EURO", "eur", "Eur", "E1R", "€UR", "EU ", " EUR"] {
            assert_eq!(Currency::new(code), Err(OrderError::InvalidCurrency { code: code.to_owned() }), "{code}");
        }
    }

    #[test]
    fn serialises_as_a_string_and_validates_when_read() {
        assert_eq!(serde_json::to_string(&Currency::EUR).ok(), Some("\"EUR\"".to_owned()));
        assert_eq!(serde_json::from_str::<Currency>("\"GBP\"").ok(), Currency::new("GBP").ok());
        assert!(serde_json::from_str::<Currency>("\"gbp\"").is_err());
    }
}

//! Exact conversion of decimal price strings to integer minor units.

/// A price string that is not a plain, non-negative decimal with few enough fraction digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed price {text:?}: {reason}")]
pub struct MalformedPrice {
    /// The rejected text.
    pub text: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

/// Converts a decimal string such as `"12.50"` to minor units (`1250` with two
/// fraction digits), exactly: no floating point, no rounding.
///
/// Accepted: ASCII digits, optionally followed by `.` and 1 to `fraction_digits` digits.
/// Rejected: signs, exponents, spaces, thousands separators, a bare `.`, more fraction
/// digits than the currency has, and values that do not fit in an `i64`.
///
/// ```
/// use example_orders::domain::decimal_to_minor;
/// assert_eq!(decimal_to_minor("12.50", 2), Ok(1250));
/// assert_eq!(decimal_to_minor("12.5", 2), Ok(1250));
/// assert_eq!(decimal_to_minor("7", 2), Ok(700));
/// assert!(decimal_to_minor("12.505", 2).is_err());
/// assert!(decimal_to_minor("-1.00", 2).is_err());
/// ```
pub fn decimal_to_minor(text: &str, fraction_digits: u32) -> Result<i64, MalformedPrice> {
    let bad = |reason| MalformedPrice { text: text.to_owned(), reason };
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return Err(bad("a '.' is followed by at least one digit")),
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() {
        return Err(bad("a price starts with a digit"));
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("a price holds only digits and at most one '.'"));
    }
    let Some(missing) = u32::try_from(fraction.len()).ok().and_then(|n| fraction_digits.checked_sub(n)) else {
        return Err(bad("too many digits after the '.' for the currency"));
    };
    let value = digits(whole)
        .and_then(|w| w.checked_mul(10i64.checked_pow(fraction_digits)?))
        .zip(digits(fraction))
        .and_then(|(w, f)| w.checked_add(f.checked_mul(10i64.checked_pow(missing)?)?));
    value.ok_or_else(|| bad("the price is too large"))
}

/// The value of a run of ASCII digits (0 for none), or `None` on overflow.
fn digits(text: &str) -> Option<i64> {
    text.bytes().try_fold(0i64, |n, b| n.checked_mul(10)?.checked_add(i64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly() {
        let cases = [
            ("0", 0),
            ("0.00", 0),
            ("0.01", 1),
            ("0.1", 10),
            ("12.50", 1250),
            ("12.5", 1250),
            ("12", 1200),
            ("007.05", 705),
            ("19.99", 1999),
            ("92233720368547758.07", i64::MAX),
        ];
        for (text, minor) in cases {
            assert_eq!(decimal_to_minor(text, 2), Ok(minor), "{text}");
        }
        assert_eq!(decimal_to_minor("5", 0), Ok(5));
        assert_eq!(decimal_to_minor("1.234", 3), Ok(1234));
    }

    #[test]
    fn rejects_malformed_text() {
        let cases = [
            "",
            ".",
            ".5",
            "12.",
            "-1.00",
            "+1.00",
            "1e3",
            "1,50",
            "1.2.3",
            " 1.00",
            "1.00 ",
            "12.505",
            "0.001",
            "NaN",
            "١٢",
            "92233720368547758.08",
            "99999999999999999999",
        ];
        for text in cases {
            let error = decimal_to_minor(text, 2).expect_err(text);
            assert_eq!(error.text, text);
        }
        assert!(decimal_to_minor("1.5", 0).is_err());
    }
}

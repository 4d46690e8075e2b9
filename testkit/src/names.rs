//! Random, collision-free names for per-test resources.

/// Twelve random lowercase hex digits (48 bits from a UUID v4).
pub(crate) fn random_hex12() -> String {
    let mut hex = uuid::Uuid::new_v4().simple().to_string();
    hex.truncate(12);
    hex
}

/// A fresh name for a per-test resource such as a JetStream stream: `PREFIX_<12 hex digits>`.
///
/// The result is upper case and holds only ASCII letters, digits and `_`; any other character of
/// `prefix` becomes `_`. That is valid as a JetStream stream or consumer name and as a subject
/// token.
///
/// ```
/// let name = tidemark_testkit::unique_name("orders.v1");
/// assert!(name.starts_with("ORDERS_V1_"));
/// assert_eq!(name.len(), "ORDERS_V1_".len() + 12);
/// ```
pub fn unique_name(prefix: &str) -> String {
    let prefix: String =
        prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{prefix}_{}", random_hex12().to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_clean() {
        let a = unique_name("a b-c");
        let b = unique_name("a b-c");
        assert_ne!(a, b);
        assert!(a.starts_with("A_B_C_"));
        assert!(a.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
    }
}

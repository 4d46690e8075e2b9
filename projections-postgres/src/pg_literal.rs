//! Values written out as SQL literals, for the few statements that go out as simple
//! queries (several statements in one round trip, which the extended protocol cannot
//! send). Strings use the escape-string form, which reads the same whatever the server's
//! `standard_conforming_strings`: every backslash and quote in them is escaped.

/// `value` as a `text` literal.
pub(crate) fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `values` as a `text[]` literal.
pub(crate) fn text_array(values: &[&str]) -> String {
    let items: Vec<String> = values.iter().map(|v| text(v)).collect();
    format!("ARRAY[{}]::text[]", items.join(","))
}

/// `values` as a `bigint[]` literal.
pub(crate) fn bigint_array(values: &[i64]) -> String {
    let items: Vec<String> = values.iter().map(i64::to_string).collect();
    format!("ARRAY[{}]::bigint[]", items.join(","))
}

/// `values` as a `boolean[]` literal.
pub(crate) fn bool_array(values: &[bool]) -> String {
    let items: Vec<&str> = values.iter().map(|v| if *v { "true" } else { "false" }).collect();
    format!("ARRAY[{}]::boolean[]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::{bigint_array, bool_array, text, text_array};

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(text("plain"), "E'plain'");
        assert_eq!(text(r"it's a \ back"), r"E'it\'s a \\ back'");
        assert_eq!(text_array(&["a", "b'"]), r"ARRAY[E'a',E'b\'']::text[]");
        assert_eq!(text_array(&[]), "ARRAY[]::text[]");
    }

    #[test]
    fn numbers_and_booleans_are_written_plainly() {
        assert_eq!(bigint_array(&[0, -1, i64::MAX]), "ARRAY[0,-1,9223372036854775807]::bigint[]");
        assert_eq!(bool_array(&[true, false]), "ARRAY[true,false]::boolean[]");
    }
}

//! Percent-escaping of free text carried in NATS header values.
//!
//! NATS header values cannot hold CR or LF, and readers trim surrounding whitespace
//! (async-nats trims Unicode whitespace, such as U+0085 or U+00A0, not only ASCII), so
//! text from users (user names, tenants) is escaped: `%`, every whitespace character and
//! every control character become `%XX` per UTF-8 byte (two uppercase hex digits);
//! everything else, other non-ASCII UTF-8 included, is kept. Text made only of letters,
//! digits, `_` and `-` is unchanged.

use std::fmt::Write as _;

/// A header value that breaks a rule: a bad escape sequence, or a value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ValueError(pub &'static str);

/// Escapes `text` for a header value.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut bytes = [0; 4];
    for c in text.chars() {
        if c == '%' || c.is_whitespace() || c.is_control() {
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`].
pub(crate) fn unescape(value: &str) -> Result<String, ValueError> {
    if !value.contains('%') {
        return Ok(value.to_owned());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ValueError("a '%' is followed by two hex digits"))?;
            out.push(hex_byte(hex).ok_or(ValueError("a '%' is followed by two hex digits"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ValueError("escaped text decodes to UTF-8"))
}

fn hex_byte(hex: &[u8]) -> Option<u8> {
    let digit = |b: &u8| char::from(*b).to_digit(16);
    let [high, low] = hex else { return None };
    u8::try_from(digit(high)? * 16 + digit(low)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged_and_special_characters_round_trip() {
        assert_eq!(escape("alice_1-x"), "alice_1-x");
        assert_eq!(escape("a b%c\r\n\t\u{7f}"), "a%20b%25c%0D%0A%09%7F");
        for text in ["", " lead and trail ", "100%", "line\r\nbreak", "zoë 東京", "%41", "\u{85}x\u{a0}", "\u{3000}"]
        {
            assert_eq!(unescape(&escape(text)).as_deref(), Ok(text));
            assert!(!escape(text).contains(['\r', '\n', ' ']));
            assert_eq!(escape(text).trim(), escape(text), "{text:?}");
        }
        assert_eq!(escape("\u{a0}"), "%C2%A0");
    }

    #[test]
    fn bad_escapes_are_errors() {
        for bad in ["%", "%4", "%zz", "a%g1", "%FF"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }
}

//! Keeping secrets out of `Debug`, `Display` and logs.

use std::fmt;

/// A password or token: `Debug` shows `"***"`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for handing to the client library only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// `url` with the password of its user information replaced by `***`
/// (`nats://u:p@h:4222` → `nats://u:***@h:4222`), and a token given alone as user
/// information (`nats://tok@h`) replaced too. Anything without `@` before the host is
/// returned as it is.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}{shown}{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_in_urls_are_hidden() {
        assert_eq!(redact_url("nats://relay:hunter2@10.0.0.1:4222"), "nats://relay:***@10.0.0.1:4222");
        assert_eq!(redact_url("tls://t0k3n@h"), "tls://***@h");
        assert_eq!(redact_url("u:p:q@h:4222"), "u:***@h:4222");
        assert_eq!(redact_url("postgres://a:b@c/d?x=@"), "postgres://a:***@c/d?x=@");
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn a_secret_debugs_as_stars() {
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "\"***\"");
    }
}

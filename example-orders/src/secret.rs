//! Values that must never reach a log: command-line secrets and the database URL.
//!
//! Both types parse from a string (so clap can fill them from flags or environment
//! variables) and show only a redacted form in `Debug` (and, for the URL, `Display`).

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A password, token or signing secret: `Debug` shows `"***"`; no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, to hand to the component that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A URL that may carry credentials, or a comma-separated list of them: the PostgreSQL
/// URL, the NATS servers. `Debug` and `Display` hide the password of each URL's user
/// information (a user information without `:` is taken for a token and hidden whole) and
/// the values of `password` and `sslpassword` parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL (or list) with its secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        self.0.split(',').map(redact_one).collect::<Vec<_>>().join(",")
    }
}

fn redact_one(url: &str) -> String {
    let url = tidemark_nats::redact_url(url);
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if is_secret_param(key) => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn is_secret_param(key: &str) -> bool {
    matches!(key.to_ascii_lowercase().as_str(), "password" | "sslpassword")
}

impl FromStr for SecretUrl {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_urls_show_no_password() {
        let list = SecretUrl::new("nats://a:pw1@h1:4222, nats://tok2@h2,h3");
        assert_eq!(list.to_string(), "nats://a:***@h1:4222, nats://***@h2,h3");
    }

    #[test]
    fn database_urls_show_no_password() {
        let url = SecretUrl::new("postgres://app:s3cr3t@db:5432/shop?sslmode=require&password=p2&PassWord=p3");
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("s3cr3t") && !shown.contains("p2") && !shown.contains("p3"), "{shown}");
            assert!(shown.contains("app:***@db:5432/shop?sslmode=require&password=***"), "{shown}");
        }
        assert_eq!(url.expose(), "postgres://app:s3cr3t@db:5432/shop?sslmode=require&password=p2&PassWord=p3");
        assert_eq!(format!("{:?}", Secret::new("x")), "\"***\"");
    }
}

//! Bearer tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, first part))`.
//!
//! The claims name the user (`sub`), whether they are an admin (`adm`) and when the token
//! expires (`exp`, Unix seconds). The secret comes from configuration; without one the app
//! runs with [`DEV_SECRET`] in dev mode and says so in its log.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The secret used when none is configured. Anyone can read it here: dev mode only.
pub const DEV_SECRET: &str = "tidemark-orders-dev-secret-do-not-use-in-production";

/// The shortest configured secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest user name, in characters (the domain's longest customer reference).
pub const MAX_USER_CHARS: usize = 128;

/// Lifetime of a token issued without an explicit one: 30 days.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name; also the customer of the orders they place.
    pub name: String,
    /// Whether the user may call the ops endpoints.
    pub admin: bool,
}

/// Why a token or a user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is not two base64url parts of valid claims.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match: another secret, or a changed token.
    #[error("bad token signature")]
    BadSignature,
    /// The token has expired.
    #[error("expired token")]
    Expired,
    /// A user name is 1 to 128 ASCII letters, digits, and `.`, `_`, `-`, `@`, `+`.
    #[error("a user name is 1 to 128 ASCII letters, digits, '.', '_', '-', '@' or '+'")]
    BadUserName,
    /// A configured secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("a token secret is at least 32 bytes")]
    ShortSecret,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    adm: bool,
    exp: i64,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Vec<u8>,
    dev: bool,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("dev", &self.dev).finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from a configured secret (at least [`MIN_SECRET_BYTES`] long).
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, AuthError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthError::ShortSecret);
        }
        Ok(Self { secret, dev: false })
    }

    /// Keys from [`DEV_SECRET`]: dev mode.
    pub fn dev() -> Self {
        Self { secret: DEV_SECRET.as_bytes().to_vec(), dev: true }
    }

    /// Whether these are the dev keys (which also enables the dev login endpoint).
    pub fn is_dev(&self) -> bool {
        self.dev
    }

    /// A token for `user`, valid for `ttl`.
    pub fn issue(&self, user: &str, admin: bool, ttl: Duration) -> Result<String, AuthError> {
        check_user_name(user)?;
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims { sub: user.to_owned(), adm: admin, exp: Utc::now().timestamp().saturating_add(ttl) };
        let claims = serde_json::to_vec(&claims).map_err(|_| AuthError::Malformed)?;
        let head = URL_SAFE_NO_PAD.encode(claims);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&head).finalize().into_bytes());
        Ok(format!("{head}.{signature}"))
    }

    /// The user a token names, if its signature holds and it has not expired.
    pub fn verify(&self, token: &str) -> Result<User, AuthError> {
        let (head, signature) = token.split_once('.').ok_or(AuthError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthError::Malformed)?;
        // Constant-time comparison.
        self.mac(head).verify_slice(&signature).map_err(|_| AuthError::BadSignature)?;
        let claims = URL_SAFE_NO_PAD.decode(head).map_err(|_| AuthError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&claims).map_err(|_| AuthError::Malformed)?;
        if claims.exp <= Utc::now().timestamp() {
            return Err(AuthError::Expired);
        }
        check_user_name(&claims.sub)?;
        Ok(User { name: claims.sub, admin: claims.adm })
    }

    fn mac(&self, head: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(head.as_bytes());
        mac
    }
}

/// Checks a user name: 1 to [`MAX_USER_CHARS`] ASCII letters, digits, `.`, `_`, `-`, `@`, `+`.
/// Never `/`, so a user name can prefix read-model keys.
pub fn check_user_name(name: &str) -> Result<(), AuthError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    if name.is_empty() || name.len() > MAX_USER_CHARS || !name.chars().all(allowed) {
        return Err(AuthError::BadUserName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_a_changed_one_fails() {
        let keys = TokenKeys::dev();
        let token = keys.issue("ada@example.com", true, DEFAULT_TOKEN_TTL).expect("token");
        assert_eq!(keys.verify(&token), Ok(User { name: "ada@example.com".into(), admin: true }));
        let other = TokenKeys::new(vec![7u8; 32]).expect("keys");
        assert_eq!(other.verify(&token), Err(AuthError::BadSignature));
        let forged_head = URL_SAFE_NO_PAD.encode(br#"{"sub":"ada@example.com","adm":true,"exp":99999999999}"#);
        let forged = format!("{forged_head}.{}", token.split_once('.').expect("two parts").1);
        assert_eq!(keys.verify(&forged), Err(AuthError::BadSignature));
        assert_eq!(keys.verify("nonsense"), Err(AuthError::Malformed));
    }

    #[test]
    fn expired_tokens_and_bad_names_are_refused() {
        let keys = TokenKeys::dev();
        let token = keys.issue("ada", false, Duration::ZERO).expect("token");
        assert_eq!(keys.verify(&token), Err(AuthError::Expired));
        for name in ["", "a/b", "a b", &"x".repeat(129)] {
            assert_eq!(keys.issue(name, false, DEFAULT_TOKEN_TTL), Err(AuthError::BadUserName), "{name:?}");
        }
        assert_eq!(TokenKeys::new("short").map(|_| ()), Err(AuthError::ShortSecret));
    }
}

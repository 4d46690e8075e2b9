//! Bearer tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, first part))`.
//!
//! The claims name the user (`sub`), whether they are an admin (`adm`), when the token
//! expires (`exp`, Unix seconds) and, for a user of a tenant, the tenant (`ten`). A token
//! without `ten` (every token issued before tenants existed) belongs to the default
//! tenant: no tenant at all, as in a single-tenant app. The secret comes from configuration; without one the app
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

/// Longest tenant name, in characters.
pub const MAX_TENANT_CHARS: usize = 32;

/// An authenticated user.
///
/// A user of the default tenant is known by their name. A user of a tenant is known by
/// `/<tenant>/<name>`, which no user name of another tenant or of the default tenant can
/// be (user names hold no `/`): it is the customer of the orders they place and the key
/// of their order list, sockets, command outcomes and idempotency keys, so every one of
/// those is kept per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Who the user is: the user name, or `/<tenant>/<name>` for a user of a tenant.
    pub name: String,
    /// Whether the user is an admin: of their tenant's orders, and, in the default tenant
    /// only, of the ops endpoints that span every tenant (sales, fulfilments).
    pub admin: bool,
    /// The user's tenant; `None` for the default tenant.
    pub tenant: Option<String>,
}

impl User {
    /// A user of the default tenant.
    pub fn new(name: impl Into<String>, admin: bool) -> Self {
        Self { name: name.into(), admin, tenant: None }
    }

    /// Whether this user may see and act on what `owner` (a [`User::name`]) owns: their
    /// own things, and, for an admin, anything of the admin's tenant.
    pub fn may_act_for(&self, owner: &str) -> bool {
        owner == self.name || (self.admin && tenant_of(owner) == self.tenant.as_deref())
    }

    /// Whether this user is an admin of the default tenant, who may use the ops endpoints
    /// that span every tenant.
    pub fn is_operator(&self) -> bool {
        self.admin && self.tenant.is_none()
    }
}

/// The tenant of a [`User::name`]: `Some("acme")` for `/acme/ada`, `None` for `ada`.
pub fn tenant_of(name: &str) -> Option<&str> {
    name.strip_prefix('/').and_then(|rest| rest.split_once('/')).map(|(tenant, _)| tenant)
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
    /// A tenant is 1 to 32 lowercase ASCII letters, digits, `_` or `-`, and with the user
    /// name it fits [`MAX_USER_CHARS`] (as `/<tenant>/<name>`).
    #[error("a tenant is 1 to 32 lowercase ASCII letters, digits, '_' or '-', and '/<tenant>/<user>' is at most 128 characters")]
    BadTenant,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ten: Option<String>,
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

    /// A token for `user` of the default tenant, valid for `ttl`.
    pub fn issue(&self, user: &str, admin: bool, ttl: Duration) -> Result<String, AuthError> {
        self.issue_in(None, user, admin, ttl)
    }

    /// A token for `user` of `tenant` (`None`: the default tenant), valid for `ttl`.
    pub fn issue_in(&self, tenant: Option<&str>, user: &str, admin: bool, ttl: Duration) -> Result<String, AuthError> {
        check_user_name(user)?;
        if let Some(tenant) = tenant {
            check_tenant(tenant, user)?;
        }
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let exp = Utc::now().timestamp().saturating_add(ttl);
        let claims = Claims { sub: user.to_owned(), adm: admin, exp, ten: tenant.map(str::to_owned) };
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
        match claims.ten {
            None => Ok(User::new(claims.sub, claims.adm)),
            Some(tenant) => {
                check_tenant(&tenant, &claims.sub)?;
                Ok(User { name: format!("/{tenant}/{}", claims.sub), admin: claims.adm, tenant: Some(tenant) })
            }
        }
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

/// Checks a tenant name: 1 to [`MAX_TENANT_CHARS`] lowercase ASCII letters, digits, `_`
/// or `-`, and `/<tenant>/<user>` at most [`MAX_USER_CHARS`] long (the longest customer).
pub fn check_tenant(tenant: &str, user: &str) -> Result<(), AuthError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-');
    let fits = tenant.len() + user.len() + 2 <= MAX_USER_CHARS;
    if tenant.is_empty() || tenant.len() > MAX_TENANT_CHARS || !tenant.chars().all(allowed) || !fits {
        return Err(AuthError::BadTenant);
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
        assert_eq!(keys.verify(&token), Ok(User::new("ada@example.com", true)));
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

    #[test]
    fn a_tenants_user_is_known_by_tenant_and_name() {
        let keys = TokenKeys::dev();
        let token = keys.issue_in(Some("acme"), "ada", true, DEFAULT_TOKEN_TTL).expect("token");
        let user = keys.verify(&token).expect("valid");
        assert_eq!(user, User { name: "/acme/ada".into(), admin: true, tenant: Some("acme".into()) });
        assert_eq!(tenant_of(&user.name), Some("acme"));
        assert!(user.may_act_for("/acme/bob"), "an admin acts for the tenant's users");
        assert!(!user.may_act_for("/globex/bob"), "not for another tenant's");
        assert!(!user.may_act_for("bob"), "nor for the default tenant's");
        assert!(!user.is_operator());
        assert!(User::new("ops", true).is_operator());
        assert!(!User::new("ops", true).may_act_for("/acme/ada"), "the default tenant's admin is not acme's");
        for bad in ["", "Acme", "a/b", "a b", &"x".repeat(33)] {
            assert_eq!(keys.issue_in(Some(bad), "ada", false, DEFAULT_TOKEN_TTL), Err(AuthError::BadTenant), "{bad:?}");
        }
        assert_eq!(keys.issue_in(Some("acme"), &"x".repeat(123), false, DEFAULT_TOKEN_TTL), Err(AuthError::BadTenant));
    }
}

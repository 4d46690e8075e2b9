//! Who is asking: the bearer token of a request, and the dev login.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::{Deserialize, Serialize};
use tidemark::EventStore;

use crate::app::App;
use crate::auth::{User, DEFAULT_TOKEN_TTL};
use crate::error::ApiError;

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies a token with the app's keys.
pub(super) fn verify<S: EventStore, R>(app: &App<S, R>, token: Option<&str>) -> Result<User, ApiError> {
    let token = token.ok_or(ApiError::Unauthorized("a bearer token is required"))?;
    app.keys().verify(token).map_err(|_| ApiError::Unauthorized("the token is invalid or expired"))
}

impl<S, R> FromRequestParts<Arc<App<S, R>>> for User
where
    S: EventStore + 'static,
    R: Send + Sync + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, R>>) -> Result<Self, ApiError> {
        verify(app, bearer(&parts.headers))
    }
}

/// A user who must be an admin (of their tenant: what they may act on is checked per
/// order with [`User::may_act_for`]).
#[derive(Debug, Clone)]
pub(super) struct Admin(pub User);

/// An admin of the default tenant: the ops endpoints that span every tenant (sales, the
/// fulfilment queue) want one; a tenant's admin gets 403 there.
#[derive(Debug, Clone)]
pub(super) struct Operator;

impl<S, R> FromRequestParts<Arc<App<S, R>>> for Operator
where
    S: EventStore + 'static,
    R: Send + Sync + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, R>>) -> Result<Self, ApiError> {
        let user = verify(app, bearer(&parts.headers))?;
        if user.is_operator() {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl<S, R> FromRequestParts<Arc<App<S, R>>> for Admin
where
    S: EventStore + 'static,
    R: Send + Sync + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<S, R>>) -> Result<Self, ApiError> {
        let user = verify(app, bearer(&parts.headers))?;
        if user.admin {
            Ok(Self(user))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// `POST /dev/login` body.
#[derive(Debug, Deserialize)]
pub(super) struct LoginBody {
    user: String,
    #[serde(default)]
    admin: bool,
    /// The user's tenant (none: the default tenant).
    #[serde(default)]
    tenant: Option<String>,
}

/// `POST /dev/login` answer.
#[derive(Debug, Serialize)]
pub(super) struct LoginAnswer {
    token: String,
    user: String,
    admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
}

/// `POST /dev/login`: a token for any user name, in dev mode only (404 otherwise).
pub(super) async fn dev_login<S: EventStore, R>(
    State(app): State<Arc<App<S, R>>>,
    body: axum::body::Bytes,
) -> Result<Json<LoginAnswer>, ApiError> {
    if !app.keys().is_dev() {
        return Err(ApiError::NotFound("dev login"));
    }
    let body: LoginBody = super::parse_json(&body)?;
    let token = app
        .keys()
        .issue_in(body.tenant.as_deref(), &body.user, body.admin, DEFAULT_TOKEN_TTL)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    Ok(Json(LoginAnswer { token, user: body.user, admin: body.admin, tenant: body.tenant }))
}

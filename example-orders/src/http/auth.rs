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

/// A user who must be an admin.
#[derive(Debug, Clone)]
pub(super) struct Admin(pub User);

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
}

/// `POST /dev/login` answer.
#[derive(Debug, Serialize)]
pub(super) struct LoginAnswer {
    token: String,
    user: String,
    admin: bool,
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
    let token =
        app.keys().issue(&body.user, body.admin, DEFAULT_TOKEN_TTL).map_err(|e| ApiError::Invalid(e.to_string()))?;
    Ok(Json(LoginAnswer { token, user: body.user, admin: body.admin }))
}

//! [`CommandRequest`]: a command request taken in once, before its handler runs: the
//! bearer token, the `Idempotency-Key`, `If-Match`, and the JSON body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tidemark::{CommandId, EventStore, StreamVersion};
use uuid::Uuid;

use super::intake::accepted_response;
use super::parse_json;
use crate::app::{fingerprint, request_ids, App, Fingerprint, Lookup, MAX_KEY_BYTES};
use crate::auth::User;
use crate::error::ApiError;

/// The header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a response that repeats an earlier one for the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// A command request that is neither refused nor a retry of an accepted one.
///
/// Taken in, in this order: the bearer token (401), the `Idempotency-Key` (400), the
/// `If-Match` version (400), the content type of a non-empty body (415: JSON, or none
/// declared), the body's size (413), then the key: a retry of an accepted request is
/// answered as that request was (202 with `Idempotent-Replayed`) and a key used for
/// another request is refused (422), without the handler running. Last, the body is
/// parsed into `B` (400; an empty body counts as `{}`).
#[derive(Debug)]
pub(super) struct CommandRequest<B> {
    /// Who sent it.
    pub user: User,
    /// Its body.
    pub body: B,
    /// The stream version it requires (`If-Match`), if any.
    pub if_match: Option<StreamVersion>,
    /// Its key and fingerprint, to remember once it is accepted.
    pub(super) key: Option<(String, Fingerprint)>,
    /// Its id: derived from the key when there is one, fresh otherwise.
    pub(super) command_id: CommandId,
    /// The id a new order gets: derived from the key when there is one.
    pub(super) new_order_id: Uuid,
}

/// Why a command handler does not run.
#[derive(Debug)]
pub(super) enum NotTaken {
    /// The request is refused.
    Refused(ApiError),
    /// The request repeats an accepted one: this is that one's answer.
    Replayed(Response),
}

impl From<ApiError> for NotTaken {
    fn from(error: ApiError) -> Self {
        Self::Refused(error)
    }
}

impl IntoResponse for NotTaken {
    fn into_response(self) -> Response {
        match self {
            Self::Refused(error) => error.into_response(),
            Self::Replayed(response) => response,
        }
    }
}

impl<B, S, R> FromRequest<Arc<App<S, R>>> for CommandRequest<B>
where
    B: DeserializeOwned,
    S: EventStore + 'static,
    R: Send + Sync + 'static,
{
    type Rejection = NotTaken;

    async fn from_request(request: Request, app: &Arc<App<S, R>>) -> Result<Self, NotTaken> {
        let (mut parts, body) = request.into_parts();
        let user = User::from_request_parts(&mut parts, app).await?;
        let key = idempotency_key(&parts.headers)?;
        let if_match = if_match(&parts.headers)?;
        let json = declares_json_or_nothing(&parts.headers);
        let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app).await.map_err(unreadable)?;
        if !json && !bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::UnsupportedMediaType.into());
        }
        let print = fingerprint(method.as_str(), &path, &bytes);
        if let Some(key) = &key {
            match app.idempotency().lookup(&user.name, key, &print) {
                Lookup::Replay(accepted) => return Err(NotTaken::Replayed(accepted_response(accepted, true))),
                Lookup::Reused => return Err(ApiError::KeyReused.into()),
                Lookup::New => {}
            }
        }
        let body = parse_json(&bytes)?;
        let (command_id, new_order_id) = request_ids(&user.name, key.as_deref().map(|k| (k, &print)));
        Ok(Self { user, body, if_match, key: key.map(|k| (k, print)), command_id, new_order_id })
    }
}

impl<B> CommandRequest<B> {
    /// The same request with its body turned into something else (usually a command).
    pub(super) fn map<C>(self, f: impl FnOnce(B) -> C) -> CommandRequest<C> {
        let Self { user, body, if_match, key, command_id, new_order_id } = self;
        CommandRequest { user, body: f(body), if_match, key, command_id, new_order_id }
    }

    /// The same request with its body turned into something else, or why it cannot be.
    pub(super) fn try_map<C, E>(self, f: impl FnOnce(B) -> Result<C, E>) -> Result<CommandRequest<C>, E> {
        let Self { user, body, if_match, key, command_id, new_order_id } = self;
        Ok(CommandRequest { user, body: f(body)?, if_match, key, command_id, new_order_id })
    }

    /// The id a new order placed by this request gets.
    pub(super) fn new_order_id(&self) -> Uuid {
        self.new_order_id
    }
}

/// A body that cannot be read: too large (413) or broken off (400).
fn unreadable(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Whether the request declares a JSON body (`application/json`, `application/*+json`)
/// or no content type at all.
fn declares_json_or_nothing(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return true };
    let Ok(value) = value.to_str() else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else { return false };
    subtype == "json" || subtype.ends_with("+json")
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES && k.bytes().all(|b| b.is_ascii_graphic()));
    let key = key.ok_or_else(|| ApiError::BadRequest("Idempotency-Key is 1 to 255 visible ASCII characters".into()))?;
    Ok(Some(key.to_owned()))
}

/// The `If-Match` header as a stream version: `"3"`, `W/"3"` or `3`.
fn if_match(headers: &HeaderMap) -> Result<Option<StreamVersion>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    let version = text.parse::<u64>().map_err(|_| {
        ApiError::BadRequest("If-Match holds the order's version as returned in its ETag, such as \"3\"".into())
    })?;
    Ok(Some(StreamVersion(version)))
}

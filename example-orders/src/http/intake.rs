//! Taking a command in: idempotency key, fingerprint, ids, `If-Match`, and the 202.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use tidemark::{CommandId, EventStore, StreamVersion};
use uuid::Uuid;

use crate::app::{
    fingerprint, request_ids, Accepted, App, CommandRecord, CommandStatus, Fingerprint, Job, Lookup, Submission,
    MAX_KEY_BYTES,
};
use crate::auth::User;
use crate::error::ApiError;

/// The header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a response that repeats an earlier one for the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// A command request that is not a replay: its ids, and its key to remember.
#[derive(Debug)]
pub struct Ticket {
    user: User,
    key: Option<(String, Fingerprint)>,
    command_id: CommandId,
    /// The id a new order gets (derived from the key when there is one).
    pub new_order_id: Uuid,
}

/// What a command request turns out to be.
#[derive(Debug)]
pub enum Intake {
    /// A retry of an accepted request: answer as before.
    Replay(Response),
    /// A new request.
    Fresh(Ticket),
}

/// Starts taking a command request in: a retry with a known key is answered as before, a
/// known key with another request is refused.
pub fn begin<S: EventStore, R>(
    app: &App<S, R>,
    user: User,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<Intake, ApiError> {
    let key = idempotency_key(headers)?;
    let print = fingerprint(method.as_str(), uri.path(), body);
    if let Some(key) = &key {
        match app.idempotency().lookup(&user.name, key, &print) {
            Lookup::Replay(accepted) => return Ok(Intake::Replay(accepted_response(accepted, true))),
            Lookup::Reused => return Err(ApiError::KeyReused),
            Lookup::New => {}
        }
    }
    let (command_id, new_order_id) = request_ids(&user.name, key.as_deref().map(|k| (k, &print)));
    Ok(Intake::Fresh(Ticket { user, key: key.map(|k| (k, print)), command_id, new_order_id }))
}

impl Ticket {
    /// The user who sent the request.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// A keyed request whose command already ran (before this process restarted, or before
    /// its in-memory record was evicted): the store knows the command id the key derives, so
    /// the request is answered as the replay it is, not validated and run a second time.
    /// `None` when the request has no key or its command never ran.
    pub async fn already_done<S, R>(
        &self,
        app: &Arc<App<S, R>>,
        kind: &'static str,
        entity_id: Uuid,
    ) -> Result<Option<Response>, ApiError>
    where
        S: EventStore + Clone + 'static,
        R: Send + Sync + 'static,
    {
        let Some((key, print)) = &self.key else { return Ok(None) };
        let stored = app.orders().store().command_outcome(self.command_id).await.map_err(|e| ApiError::store(&e))?;
        let Some(outcome) = stored else { return Ok(None) };
        let now = Utc::now();
        app.outcomes().accepted(CommandRecord {
            command_id: self.command_id,
            kind,
            entity_id,
            user: self.user.name.clone(),
            status: CommandStatus::Succeeded,
            version: Some(outcome.version.0),
            accepted_at: now,
            finished_at: Some(now),
            error: None,
        });
        let accepted =
            Accepted { command_id: self.command_id, status_url: format!("/commands/{}", self.command_id), entity_id };
        let first = match app.idempotency().remember(&self.user.name, key, *print, accepted.clone()) {
            Lookup::Replay(first) => first,
            Lookup::Reused => return Err(ApiError::KeyReused),
            Lookup::New => accepted,
        };
        Ok(Some(accepted_response(first, true)))
    }

    /// Submits the command and answers 202 (or what an earlier request with the key got).
    pub fn submit<S, R>(
        self,
        app: &Arc<App<S, R>>,
        kind: &'static str,
        order_id: Uuid,
        job: Job,
        expected: Option<StreamVersion>,
    ) -> Result<Response, ApiError>
    where
        S: EventStore + Clone + 'static,
        R: Send + Sync + 'static,
    {
        let name = self.user.name.clone();
        let submission = Submission {
            user: self.user,
            kind,
            order_id,
            job,
            command_id: self.command_id,
            expected,
            idempotency_key: self.key.as_ref().map(|(k, _)| k.clone()),
        };
        let accepted = app.submit(submission)?;
        let Some((key, print)) = self.key else { return Ok(accepted_response(accepted, false)) };
        match app.idempotency().remember(&name, &key, print, accepted.clone()) {
            Lookup::Replay(first) => {
                let replayed = first != accepted;
                Ok(accepted_response(first, replayed))
            }
            Lookup::Reused => Err(ApiError::KeyReused),
            Lookup::New => Ok(accepted_response(accepted, false)),
        }
    }
}

fn accepted_response(accepted: Accepted, replayed: bool) -> Response {
    let location = HeaderValue::from_str(&accepted.status_url).ok();
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
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
pub fn if_match(headers: &HeaderMap) -> Result<Option<StreamVersion>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    let version = text.parse::<u64>().map_err(|_| {
        ApiError::BadRequest("If-Match holds the order's version as returned in its ETag, such as \"3\"".into())
    })?;
    Ok(Some(StreamVersion(version)))
}

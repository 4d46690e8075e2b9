//! Running a [`CommandRequest`] on the state it is about: a replay whose command already
//! ran, `If-Match`, the one decision, and the 202.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use tidemark::{Aggregate, EventStore, StreamId, StreamVersion};
use uuid::Uuid;

use super::request::{CommandRequest, IDEMPOTENT_REPLAYED};
use crate::app::{Accepted, App, CommandRecord, CommandStatus, Decision, Lookup, Origin, Submission};
use crate::domain::{fulfilment_stream, order_stream};
use crate::error::ApiError;

/// What a command is about: its kind (for the outcome record), its order, and the stream
/// its events go to.
#[derive(Debug, Clone)]
pub(super) struct Target {
    kind: &'static str,
    order_id: Uuid,
    stream: StreamId,
    /// The tenant the events carry when it is not the user's (an admin acting on a
    /// stream of a tenant): `Some(None)` for the default tenant.
    tenant: Option<Option<String>>,
}

impl Target {
    /// A command of `kind` on the order's own stream.
    pub(super) fn order(kind: &'static str, order_id: Uuid) -> Self {
        Self { kind, order_id, stream: order_stream(order_id), tenant: None }
    }

    /// A command of `kind` on the order's fulfilment stream.
    pub(super) fn fulfilment(kind: &'static str, order_id: Uuid) -> Self {
        Self { kind, order_id, stream: fulfilment_stream(order_id), tenant: None }
    }

    /// The events carry `tenant` (the stream's), not the user's.
    pub(super) fn in_tenant(mut self, tenant: Option<String>) -> Self {
        self.tenant = Some(tenant);
        self
    }
}

impl<C> CommandRequest<C> {
    /// Runs the command on `state`, the target stream at `version`, and answers 202 (or
    /// what an earlier request with the key got): a keyed retry whose command already ran
    /// is answered as the replay it is; `If-Match` must name `version` (409); the
    /// aggregate decides, once (422 if it refuses); the task then only appends the
    /// decided events at `version`.
    pub(super) async fn run<A, S, R>(
        self,
        app: &Arc<App<S, R>>,
        target: Target,
        state: &A,
        version: StreamVersion,
    ) -> Result<Response, ApiError>
    where
        A: Aggregate<Command = C>,
        S: EventStore + Clone + 'static,
        R: Send + Sync + 'static,
    {
        if let Some(replay) = self.already_done(app, &target).await? {
            return Ok(replay);
        }
        if let Some(expected) = self.if_match.filter(|expected| *expected != version) {
            return Err(ApiError::Conflict { expected, actual: version });
        }
        let tenant = target.tenant.clone().unwrap_or_else(|| self.user.tenant.clone());
        let origin = Origin { command_id: self.command_id, user: &self.user.name, tenant: tenant.as_deref() };
        let started = std::time::Instant::now();
        let decision = Decision::new(target.stream.clone(), state, version, &self.body, origin)
            .inspect_err(|_| tidemark::record_command(A::CATEGORY, "rejected", started.elapsed()))?;
        self.submit(app, &target, decision)
    }

    /// A keyed request whose command already ran (before this process restarted, or before
    /// its in-memory record was evicted): the store knows the command id the key derives, so
    /// the request is answered as the replay it is, not decided and run a second time.
    /// `None` when the request has no key or its command never ran.
    async fn already_done<S, R>(&self, app: &Arc<App<S, R>>, target: &Target) -> Result<Option<Response>, ApiError>
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
            kind: target.kind,
            entity_id: target.order_id,
            user: self.user.name.clone(),
            status: CommandStatus::Succeeded,
            version: Some(outcome.version.0),
            accepted_at: now,
            finished_at: Some(now),
            error: None,
        });
        let accepted = accepted(self.command_id, target.order_id);
        let first = match app.idempotency().remember(&self.user.name, key, *print, accepted.clone()) {
            Lookup::Replay(first) => first,
            Lookup::Reused => return Err(ApiError::KeyReused),
            Lookup::New => accepted,
        };
        Ok(Some(accepted_response(first, true)))
    }

    /// Submits the decided command and answers 202 (or what an earlier request with the
    /// key got, if one got there first).
    fn submit<S, R>(self, app: &Arc<App<S, R>>, target: &Target, decision: Decision) -> Result<Response, ApiError>
    where
        S: EventStore + Clone + 'static,
        R: Send + Sync + 'static,
    {
        let name = self.user.name.clone();
        let submission = Submission {
            user: self.user,
            kind: target.kind,
            order_id: target.order_id,
            command_id: self.command_id,
            decision,
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

fn accepted(command_id: tidemark::CommandId, entity_id: Uuid) -> Accepted {
    Accepted { command_id, status_url: format!("/commands/{command_id}"), entity_id }
}

/// The 202 of an accepted command, marked as a replay when it repeats an earlier one.
pub(super) fn accepted_response(accepted: Accepted, replayed: bool) -> Response {
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

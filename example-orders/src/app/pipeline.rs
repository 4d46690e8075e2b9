//! The command pipeline: accept a decided command (record it as pending, answer 202),
//! append its events in a task at the version it was decided on, record the outcome and
//! push it to the user's sockets.

use std::sync::Arc;

use chrono::Utc;
use tidemark::{CommandId, EventStore};
use tokio::sync::RwLockWriteGuard;
use uuid::Uuid;

use super::decision::Decision;
use super::notice::{CommandFailure, CommandStatus};
use super::outcomes::CommandRecord;
use super::{Accepted, App};
use crate::auth::User;
use crate::domain::Order;
use crate::error::ApiError;

/// The namespace of ids derived from idempotency keys. Never change it.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x8f3e_51c2_77a4_4b0d_a1c9_5e26_d04b_93f7);

/// An accepted command, decided and ready to append.
#[derive(Debug)]
pub struct Submission {
    /// Who sent it.
    pub user: User,
    /// What it asks, such as `place` (for the outcome record).
    pub kind: &'static str,
    /// The order it is about.
    pub order_id: Uuid,
    /// Its id.
    pub command_id: CommandId,
    /// Its events and the stream version they were decided on.
    pub decision: Decision,
    /// The idempotency key it came with, if any.
    pub idempotency_key: Option<String>,
}

/// Ids for a request: derived from the user, the idempotency key and the request's
/// fingerprint when there is a key (so a replay after the key was forgotten is still
/// recorded once), fresh otherwise. Returns the command id and, for a new order, its id.
pub fn request_ids(user: &str, key: Option<(&str, &super::Fingerprint)>) -> (CommandId, Uuid) {
    match key {
        Some((key, fingerprint)) => {
            let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("{user}\n{key}\n{hex}");
            let order = Uuid::new_v5(&REQUEST_NAMESPACE, format!("order\n{name}").as_bytes());
            (CommandId::derived(REQUEST_NAMESPACE, &format!("command\n{name}")), order)
        }
        None => (CommandId::new(), Uuid::now_v7()),
    }
}

impl<S, R> App<S, R>
where
    S: EventStore + Clone + 'static,
    R: Send + Sync + 'static,
{
    /// Accepts a command: records it as pending and executes it in a task. Refused with
    /// 503 when too many commands are in flight.
    pub fn submit(self: &Arc<Self>, submission: Submission) -> Result<Accepted, ApiError> {
        let permit = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("too many commands in flight".to_owned()))?;
        let accepted = Accepted {
            command_id: submission.command_id,
            status_url: format!("/commands/{}", submission.command_id),
            entity_id: submission.order_id,
        };
        self.outcomes.accepted(CommandRecord {
            command_id: submission.command_id,
            kind: submission.kind,
            entity_id: submission.order_id,
            user: submission.user.name.clone(),
            status: CommandStatus::Pending,
            version: None,
            accepted_at: Utc::now(),
            finished_at: None,
            error: None,
        });
        let app = self.clone();
        let span = tracing::info_span!(
            "command",
            category = <Order as tidemark::Aggregate>::CATEGORY,
            kind = submission.kind,
            command_id = %submission.command_id,
        );
        let execute = async move {
            app.execute(submission).await;
            drop(permit);
        };
        tokio::spawn(tracing::Instrument::instrument(execute, span));
        Ok(accepted)
    }

    async fn execute(&self, submission: Submission) {
        let started = std::time::Instant::now();
        let result = self.append(submission.decision).await;
        let outcome = match &result {
            Ok(_) => "appended",
            Err(failure) if failure.code == "conflict" => "conflict",
            Err(_) => "error",
        };
        tidemark::record_command(<Order as tidemark::Aggregate>::CATEGORY, outcome, started.elapsed());
        if let (Err(failure), Some(key)) = (&result, &submission.idempotency_key) {
            if failure.code == "unavailable" {
                // Nothing was recorded: a retry with the same key should run it again.
                self.idempotency.forget(&submission.user.name, key);
            }
        }
        let record = self.outcomes.finished(submission.command_id, result, Utc::now());
        if let Some(notice) = record.as_ref().and_then(CommandRecord::notice) {
            self.hub.send(&submission.user.name, &notice);
        }
    }

    /// Appends a decided command's events at the version it was decided on; returns the
    /// stream's version after them. A stream that moved on meanwhile is a conflict, unless
    /// the move was this very command (recorded before, under its id).
    async fn append(&self, decision: Decision) -> Result<u64, CommandFailure> {
        let _open = self.appends.read().await;
        let request = decision.into_append();
        let command_id = request.command_id;
        let store = self.orders.store();
        match store.append(request).await {
            Ok(outcome) => Ok(outcome.version.0),
            Err(conflict @ tidemark::Error::Conflict { .. }) => {
                let earlier = match command_id {
                    Some(id) => store.command_outcome(id).await.map_err(failure)?,
                    None => None,
                };
                earlier.map(|outcome| outcome.version.0).ok_or_else(|| failure(conflict))
            }
            Err(error) => Err(failure(error)),
        }
    }

    /// Holds every accepted command between its decision and its append until the guard
    /// is dropped (commands appending already finish first). Commands are still accepted
    /// meanwhile, within `max_in_flight`. For tests and maintenance that must change a
    /// stream while commands decided on it wait.
    pub async fn hold_appends(&self) -> RwLockWriteGuard<'_, ()> {
        self.appends.write().await
    }
}

/// Turns a store error into the failure reported to the user.
fn failure(error: tidemark::Error) -> CommandFailure {
    match error {
        e @ tidemark::Error::Conflict { .. } => CommandFailure {
            code: "conflict",
            detail: format!("{e}: the order changed after the command was checked; read it again and retry"),
        },
        tidemark::Error::Personal(tidemark::PersonalError::Forgotten { .. }) => CommandFailure {
            code: "forgotten",
            detail: "the customer's personal data was erased: place the order without a delivery contact".to_owned(),
        },
        e @ tidemark::Error::StreamDeleted { .. } => CommandFailure {
            code: "gone",
            detail: format!("{e}: the order was deleted before the command was written"),
        },
        e if e.is_retryable() => {
            tracing::warn!(error = %e, "a command failed on a transient store error");
            CommandFailure { code: "unavailable", detail: "the store is unavailable; retry later".to_owned() }
        }
        other => {
            tracing::error!(error = %other, "a command failed");
            CommandFailure { code: "internal", detail: "something went wrong on our side".to_owned() }
        }
    }
}

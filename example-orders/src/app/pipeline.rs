//! The command pipeline: accept (record as pending, answer 202), execute in a task,
//! record the outcome and push it to the user's sockets.

use std::sync::Arc;

use chrono::Utc;
use tidemark::{CommandError, CommandId, CommandOptions, EventStore, ExpectedVersion, Metadata, StreamVersion};
use uuid::Uuid;

use super::notice::{CommandFailure, CommandStatus};
use super::outcomes::CommandRecord;
use super::{Accepted, App};
use crate::auth::User;
use crate::domain::{fulfilment_stream, order_stream, FulfilmentCommand, OrderCommand};
use crate::error::ApiError;

/// The namespace of ids derived from idempotency keys. Never change it.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x8f3e_51c2_77a4_4b0d_a1c9_5e26_d04b_93f7);

/// What a command does to which aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A command for the order's stream.
    Order(OrderCommand),
    /// A command for the order's fulfilment stream.
    Fulfilment(FulfilmentCommand),
}

/// An accepted command, ready to execute.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Who sent it.
    pub user: User,
    /// What it asks, such as `place` (for the outcome record).
    pub kind: &'static str,
    /// The order it is about.
    pub order_id: Uuid,
    /// The command.
    pub job: Job,
    /// Its id.
    pub command_id: CommandId,
    /// The stream version it requires (`If-Match`), if any.
    pub expected: Option<StreamVersion>,
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
        tokio::spawn(async move {
            app.execute(submission).await;
            drop(permit);
        });
        Ok(accepted)
    }

    async fn execute(&self, submission: Submission) {
        let metadata = Metadata::new().with_user(submission.user.name.clone());
        let mut options = CommandOptions::new().id(submission.command_id).metadata(metadata);
        if let Some(version) = submission.expected {
            options = options.expect(ExpectedVersion::Exact(version));
        }
        let id = submission.order_id;
        let result = match &submission.job {
            Job::Order(command) => self.orders.handle(&order_stream(id), command, &options).await.map_err(failure),
            Job::Fulfilment(command) => {
                self.fulfilments.handle(&fulfilment_stream(id), command, &options).await.map_err(failure)
            }
        };
        let result = result.map(|outcome| outcome.version.0);
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
}

/// Turns a command error into the failure reported to the user.
fn failure<E: std::error::Error + 'static>(error: CommandError<E>) -> CommandFailure {
    match error {
        CommandError::Rejected(e) => CommandFailure { code: "rejected", detail: e.to_string() },
        CommandError::Store(e @ tidemark::Error::Conflict { .. }) => {
            CommandFailure { code: "conflict", detail: format!("{e}; read the order again and retry") }
        }
        CommandError::Store(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "a command failed on a transient store error");
            CommandFailure { code: "unavailable", detail: "the store is unavailable; retry later".to_owned() }
        }
        other => {
            tracing::error!(error = %other, "a command failed");
            CommandFailure { code: "internal", detail: "something went wrong on our side".to_owned() }
        }
    }
}

//! The messages pushed to a user's WebSockets. The schema is documented in the README.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tidemark::CommandId;
use uuid::Uuid;

/// Whether a command has finished, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Accepted, not finished yet.
    Pending,
    /// Carried out: its events are stored.
    Succeeded,
    /// Not carried out; see the failure.
    Failed,
}

/// Why a command failed: a stable code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandFailure {
    /// `conflict` (the stream changed between the command's decision and its append),
    /// `forgotten` (a delivery contact for a customer whose personal data was erased),
    /// `unavailable` (the store failed; retry), or `internal`.
    pub code: &'static str,
    /// What happened.
    pub detail: String,
}

/// A message on a user's WebSockets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// The first message on a socket: it is registered and will receive the user's notices.
    Welcome {
        /// The user the socket belongs to.
        user: String,
        /// The socket's id, unique in this process.
        socket_id: u64,
    },
    /// A command of this user finished.
    Command {
        /// The id returned when the command was accepted.
        command_id: CommandId,
        /// `succeeded` or `failed`.
        status: CommandStatus,
        /// The order the command was about.
        entity_id: Uuid,
        /// The order's stream version after the command (succeeded only).
        version: Option<u64>,
        /// When the command finished.
        at: DateTime<Utc>,
        /// Why it failed (failed only).
        error: Option<CommandFailure>,
    },
    /// An order this user owns or watches changed (by any command, or the process manager).
    OrderChanged {
        /// The order.
        order_id: Uuid,
        /// The order's stream version after the change: pass it as `?version=` to read it.
        version: u64,
        /// The event's type name, such as `OrderPaid`.
        event: &'static str,
        /// When the change was recorded.
        at: DateTime<Utc>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_serialise_as_documented() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).expect("time");
        let failed = Notice::Command {
            command_id: CommandId(Uuid::nil()),
            status: CommandStatus::Failed,
            entity_id: Uuid::nil(),
            version: None,
            at,
            error: Some(CommandFailure { code: "conflict", detail: "moved on".into() }),
        };
        let expected = serde_json::json!({
            "type": "command", "command_id": Uuid::nil(), "status": "failed", "entity_id": Uuid::nil(),
            "version": null, "at": "2026-01-02T03:04:05Z", "error": { "code": "conflict", "detail": "moved on" },
        });
        assert_eq!(serde_json::to_value(&failed).ok(), Some(expected));
        let changed = Notice::OrderChanged { order_id: Uuid::nil(), version: 3, event: "OrderPaid", at };
        let expected = serde_json::json!({
            "type": "order_changed", "order_id": Uuid::nil(), "version": 3, "event": "OrderPaid",
            "at": "2026-01-02T03:04:05Z",
        });
        assert_eq!(serde_json::to_value(&changed).ok(), Some(expected));
    }
}

//! What became of each accepted command, for `GET /commands/{id}`: kept in memory, the
//! most recent ones only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tidemark::CommandId;
use uuid::Uuid;

use super::notice::{CommandFailure, CommandStatus, Notice};

/// One accepted command and its outcome so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    /// The command's id.
    pub command_id: CommandId,
    /// What it asks, such as `place` or `pay`.
    pub kind: &'static str,
    /// The order it is about.
    pub entity_id: Uuid,
    /// Who sent it; only they (or an admin) can read it.
    #[serde(skip)]
    pub user: String,
    /// Pending, succeeded or failed.
    pub status: CommandStatus,
    /// The order's stream version after it (succeeded only).
    pub version: Option<u64>,
    /// When it was accepted.
    pub accepted_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<CommandFailure>,
}

impl CommandRecord {
    /// The notice telling its user how it finished (`None` while pending).
    pub fn notice(&self) -> Option<Notice> {
        Some(Notice::Command {
            command_id: self.command_id,
            status: self.status,
            entity_id: self.entity_id,
            version: self.version,
            at: self.finished_at?,
            error: self.error.clone(),
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<CommandId, CommandRecord>,
    order: VecDeque<CommandId>,
}

/// The last `capacity` commands' records; older ones are forgotten (their events are not).
#[derive(Debug)]
pub struct Outcomes {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Outcomes {
    /// Keeps up to `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::default(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an accepted command as pending, unless it is known already and did not
    /// fail (a retry with the same derived id).
    pub fn accepted(&self, record: CommandRecord) {
        let mut inner = self.lock();
        if let Some(known) = inner.records.get_mut(&record.command_id) {
            if known.status == CommandStatus::Failed {
                *known = record;
            }
            return;
        }
        inner.order.push_back(record.command_id);
        inner.records.insert(record.command_id, record);
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.records.remove(&old);
            }
        }
    }

    /// Records how a command finished; returns the record.
    pub fn finished(
        &self,
        id: CommandId,
        result: Result<u64, CommandFailure>,
        at: DateTime<Utc>,
    ) -> Option<CommandRecord> {
        let mut inner = self.lock();
        let record = inner.records.get_mut(&id)?;
        match result {
            Ok(version) => {
                record.status = CommandStatus::Succeeded;
                record.version = Some(version);
                record.error = None;
            }
            Err(failure) => {
                record.status = CommandStatus::Failed;
                record.error = Some(failure);
            }
        }
        record.finished_at = Some(at);
        Some(record.clone())
    }

    /// A command's record, if still kept.
    pub fn get(&self, id: CommandId) -> Option<CommandRecord> {
        self.lock().records.get(&id).cloned()
    }
}

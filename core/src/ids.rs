//! Identifier newtypes.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The unique id of a stored event: a UUID v7, so ids sort roughly by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh UUID v7.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of a command. A command sent twice with the same id is handled once: the
/// second send returns the first one's outcome and appends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub Uuid);

impl CommandId {
    /// A fresh UUID v7.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// A command id derived deterministically from a name and a namespace id, for
    /// process managers that must issue "the same" command again after a redelivery.
    pub fn derived(namespace: Uuid, name: &str) -> Self {
        Self(Uuid::new_v5(&namespace, name.as_bytes()))
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

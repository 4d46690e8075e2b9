//! Metadata that travels with every event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Metadata of an event. Given with a command, it is copied onto every event the
/// command produces; the command handler fills in correlation and causation ids
/// when they are missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// Groups everything caused, directly or not, by one original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the command or event that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The acting user, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The tenant, for multi-tenant applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Free-form headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the acting user.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Adds a free-form header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }

    /// Whether the parts stored outside the correlation and causation ids are empty.
    pub fn extras_are_empty(&self) -> bool {
        self.user.is_none() && self.tenant.is_none() && self.headers.is_empty()
    }

    /// Whether any string in the metadata contains a NUL character.
    pub fn has_nul(&self) -> bool {
        let nul = |s: &String| s.contains('\0');
        self.user.as_ref().is_some_and(nul)
            || self.tenant.as_ref().is_some_and(nul)
            || self.headers.iter().any(|(k, v)| nul(k) || nul(v))
    }

    /// A rough size in bytes, for the event size limit.
    pub fn approximate_size(&self) -> usize {
        let strings = self.user.as_ref().map_or(0, String::len) + self.tenant.as_ref().map_or(0, String::len);
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        64 + strings + headers
    }
}

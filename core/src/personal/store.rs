//! An event store decorator that seals personal fields on append and reveals them on read.

use std::sync::Arc;
use std::time::Duration;

use super::keys::PersonalKeys;
use super::registry::PersonalData;
use super::seal::{reveal_events, seal_events};
use crate::diagnostics::LogDiagnostics;
use crate::error::Result;
use crate::event::RecordedEvent;
use crate::identity::{EventIdentity, Mismatch};
use crate::ids::CommandId;
use crate::store::{AppendOutcome, AppendRequest, EventStore, Snapshot};
use crate::stream_id::StreamId;
use crate::version::{LogPosition, StreamVersion};

/// Wraps an [`EventStore`]: appended events have their personal fields sealed with their
/// subjects' keys before the inner store sees them, so the stored payload (and everything
/// that copies it, such as a relay to a broker) holds only ciphertext of them; events read
/// through it ([`read_stream`](EventStore::read_stream), [`read_log`](EventStore::read_log))
/// have them revealed, or replaced by the placeholder once their subject was forgotten.
///
/// Appending personal data of a forgotten subject fails with
/// [`PersonalError::Forgotten`](crate::PersonalError::Forgotten) and writes nothing.
/// Snapshots pass through unchanged: they hold aggregate state in plain text, which is why
/// forgetting a subject must delete the snapshots of its streams (the PostgreSQL key store
/// does).
#[derive(Debug, Clone)]
pub struct ShreddingStore<S, K> {
    inner: S,
    data: Arc<PersonalData>,
    keys: K,
}

impl<S: EventStore, K: PersonalKeys> ShreddingStore<S, K> {
    /// `inner`, sealing and revealing the fields `data` registers with keys from `keys`.
    pub fn new(inner: S, data: Arc<PersonalData>, keys: K) -> Self {
        Self { inner, data, keys }
    }

    /// The wrapped store, which reads stored (sealed) payloads.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The key storage.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// The registry of personal fields.
    pub fn personal_data(&self) -> &Arc<PersonalData> {
        &self.data
    }

    async fn reveal(&self, mut events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>> {
        reveal_events(&self.data, &self.keys, &mut events).await?;
        Ok(events)
    }
}

impl<S: EventStore, K: PersonalKeys> EventStore for ShreddingStore<S, K> {
    async fn append(&self, mut request: AppendRequest) -> Result<AppendOutcome> {
        seal_events(&self.data, &self.keys, &mut request.events).await?;
        self.inner.append(request).await
    }

    async fn read_stream(&self, stream_id: &StreamId, from: StreamVersion, limit: usize) -> Result<Vec<RecordedEvent>> {
        let events = self.inner.read_stream(stream_id, from, limit).await?;
        self.reveal(events).await
    }

    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>> {
        let events = self.inner.read_log(after, limit).await?;
        self.reveal(events).await
    }

    async fn identities(&self, at: &[(StreamId, StreamVersion)]) -> Result<Vec<EventIdentity>> {
        self.inner.identities(at).await
    }

    async fn verify_events(&self, events: &[&RecordedEvent]) -> Result<Vec<Mismatch>> {
        self.inner.verify_events(events).await
    }

    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool> {
        self.inner.wait_for_log(after, timeout).await
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<StreamVersion> {
        self.inner.stream_version(stream_id).await
    }

    async fn log_head(&self) -> Result<Option<LogPosition>> {
        self.inner.log_head().await
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>> {
        self.inner.command_outcome(command_id).await
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>> {
        self.inner.load_snapshot(stream_id).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
}

impl<S: LogDiagnostics, K: PersonalKeys> LogDiagnostics for ShreddingStore<S, K> {
    async fn held_back_by(&self) -> Option<String> {
        self.inner.held_back_by().await
    }

    async fn stream_heads(&self, after: Option<&StreamId>, limit: usize) -> Result<Vec<(StreamId, StreamVersion)>> {
        self.inner.stream_heads(after, limit).await
    }
}

//! What a store can tell an operator about its log: what holds it back, and where each
//! stream ends.

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::Result;
use crate::memory::InMemoryEventStore;
use crate::store::EventStore;
use crate::stream_id::StreamId;
use crate::version::{LogPosition, StreamVersion};

/// A store that can say what keeps its log from moving on, and where each stream ends
/// (for status and audit commands).
pub trait LogDiagnostics: Send + Sync {
    /// A description of what holds the log back (a long transaction, for example), if
    /// anything does.
    fn held_back_by(&self) -> impl Future<Output = Option<String>> + Send;

    /// The last version of each stream in the readable log, by stream id in byte order,
    /// after `after`, at most `limit` streams.
    fn stream_heads(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(StreamId, StreamVersion)>>> + Send;
}

impl LogDiagnostics for InMemoryEventStore {
    async fn held_back_by(&self) -> Option<String> {
        None
    }

    async fn stream_heads(&self, after: Option<&StreamId>, limit: usize) -> Result<Vec<(StreamId, StreamVersion)>> {
        // The whole log, read in pages: an in-memory store is small.
        let mut heads: BTreeMap<String, (StreamId, StreamVersion)> = BTreeMap::new();
        let mut from = LogPosition::START;
        loop {
            let page = self.read_log(from, 10_000).await?;
            let Some(last) = page.last().map(|e| e.position) else { break };
            for event in page {
                if after.is_none_or(|a| event.stream_id.as_str() > a.as_str()) {
                    heads.insert(event.stream_id.as_str().to_owned(), (event.stream_id, event.stream_version));
                }
            }
            from = last;
        }
        Ok(heads.into_values().take(limit).collect())
    }
}

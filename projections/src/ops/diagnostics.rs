//! What holds a store's log back, for `projections status`, and where its streams end,
//! for `projections audit`.

use std::future::Future;

use std::collections::BTreeMap;

use tidemark::{EventStore, InMemoryEventStore, LogPosition, StreamId, StreamVersion};
use tidemark_postgres::PgEventStore;

use crate::error::Result;

/// A store that can say what keeps its log from moving on, and where each stream ends.
pub trait LogDiagnostics: Send + Sync {
    /// A description of what holds the log back (a long transaction, for example), if
    /// anything does.
    fn held_back_by(&self) -> impl Future<Output = Option<String>> + Send;

    /// The last version of each stream in the readable log, by stream id in byte order,
    /// after `after`, at most `limit` streams (for `projections audit`).
    fn stream_heads(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(StreamId, StreamVersion)>>> + Send;
}

impl LogDiagnostics for PgEventStore {
    async fn held_back_by(&self) -> Option<String> {
        let horizon = match self.log_horizon().await {
            Ok(h) => h,
            Err(e) => return Some(format!("cannot read the log horizon: {e}")),
        };
        if horizon.transaction_ids_regressed() {
            return Some("stored transaction ids are ahead of the server's (restored from a dump?)".to_owned());
        }
        let oldest = horizon.oldest?;
        (oldest.age.as_secs() >= 1).then(|| {
            format!(
                "transaction {} (pid {}, {}, open {:?}): {}",
                oldest.transaction_id,
                oldest.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                oldest.state.as_deref().unwrap_or("?"),
                oldest.age,
                oldest.query.as_deref().unwrap_or("")
            )
        })
    }

    async fn stream_heads(&self, after: Option<&StreamId>, limit: usize) -> Result<Vec<(StreamId, StreamVersion)>> {
        Ok(PgEventStore::stream_heads(self, after, limit).await?)
    }
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

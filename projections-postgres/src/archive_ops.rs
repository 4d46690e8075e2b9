//! `stream archive` in the ops commands of `tidemark-projections`, with the `cli`
//! feature: mount with `Ops::archive(PgArchive::new(store.clone()))`.

use std::time::Duration;

use tidemark_postgres::{ArchivePolicy, PgEventStore};
use tidemark_projections::{ArchiveOps, ArchivedStreams, OpsFuture};

/// The archive of a PostgreSQL store, for the ops commands. It archives only what every
/// relay of the schema has published (see [`ArchivePolicy::relayed_only`]).
#[derive(Debug, Clone)]
pub struct PgArchive {
    store: PgEventStore,
    relayed_only: bool,
}

impl PgArchive {
    /// The archive of `store`.
    pub fn new(store: PgEventStore) -> Self {
        Self { store, relayed_only: true }
    }

    /// Archives without waiting for a relay: only for a store that no relay reads.
    pub fn without_relay(mut self) -> Self {
        self.relayed_only = false;
        self
    }
}

impl ArchiveOps for PgArchive {
    fn archive_older_than(&self, age: Duration) -> OpsFuture<'_, ArchivedStreams> {
        let policy = ArchivePolicy::default().older_than(age).relayed_only(self.relayed_only);
        Box::pin(async move {
            let report = self.store.archive(&policy).await?;
            Ok(ArchivedStreams::new(report.streams, report.events))
        })
    }
}

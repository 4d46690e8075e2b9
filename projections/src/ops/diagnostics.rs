//! What holds a store's log back, for `projections status`.

use std::future::Future;

use tidemark::InMemoryEventStore;
use tidemark_postgres::PgEventStore;

/// A store that can say what keeps its log from moving on.
pub trait LogDiagnostics: Send + Sync {
    /// A description of what holds the log back (a long transaction, for example), if
    /// anything does.
    fn held_back_by(&self) -> impl Future<Output = Option<String>> + Send;
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
}

impl LogDiagnostics for InMemoryEventStore {
    async fn held_back_by(&self) -> Option<String> {
        None
    }
}

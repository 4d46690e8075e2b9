//! The relay in the ops commands of `tidemark-projections` (`relay status`, `relay
//! reset`), with the `cli` feature: mount it with `Ops::relay`.

use tidemark::LogPosition;
use tidemark_projections::{OpsFuture, ProjectionError, RelayOps, RelayState};

use crate::relay::NatsRelay;
use crate::sessions::relay_sessions;

/// Counting the events behind the checkpoint stops here (`lag_exact` false beyond).
const LAG_CAP: u64 = 1_000_000;

impl RelayOps for NatsRelay {
    fn relay_state(&self) -> OpsFuture<'_, RelayState> {
        Box::pin(async move {
            let store = self.store();
            let (leader, standbys) = relay_sessions(store.pool(), self.lock_key())
                .await
                .map_err(ProjectionError::database("reading the relay's sessions"))?;
            let checkpoint = store.load_checkpoint(self.checkpoint_name()).await?;
            let head = tidemark::EventStore::log_head(store).await?;
            let backlog = store.backlog(checkpoint, LAG_CAP).await?;
            let lag_seconds =
                backlog.oldest.map_or(0.0, |t| (chrono::Utc::now() - t).to_std().map_or(0.0, |age| age.as_secs_f64()));
            let mut state = RelayState::default();
            state.name = self.config().name.clone();
            state.leader = leader.map(|l| l.to_string());
            state.standbys = Some(standbys);
            state.checkpoint = checkpoint;
            state.head = head;
            state.lag_events = backlog.events;
            state.lag_exact = backlog.exact;
            state.lag_seconds = lag_seconds;
            Ok(state)
        })
    }

    fn set_checkpoint(&self, position: LogPosition) -> OpsFuture<'_, ()> {
        Box::pin(async move { Ok(self.store().set_checkpoint(self.checkpoint_name(), position).await?) })
    }
}

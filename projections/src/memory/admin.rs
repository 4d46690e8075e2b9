//! The lifecycle and operators' side of the in-memory read models.

use tidemark::{StreamId, StreamVersion};

use super::{MemoryReadModels, MemoryTx, Rename};
use crate::admin::ReadModelsAdmin;
use crate::error::Result;
use crate::letters::{DeadLetter, DeadLetterStatus, RogueMessage};
use crate::read_models::{PartitionState, Seen};

impl ReadModelsAdmin for MemoryReadModels {
    async fn take_parked(&self, tx: &mut MemoryTx, projection: &str, stream: &StreamId) -> Result<Vec<DeadLetter>> {
        tx.taken.push((projection.to_owned(), stream.clone()));
        let state = self.state();
        let parked = state
            .dead_letters
            .iter()
            .filter(|((p, s, _), l)| p == projection && s == stream && l.status == DeadLetterStatus::Parked)
            .map(|(_, l)| l.clone())
            .collect();
        Ok(parked)
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>> {
        let state = self.state();
        Ok(state.dead_letters.iter().filter(|((p, _, _), _)| p == projection).map(|(_, l)| l.clone()).collect())
    }

    async fn rogue_messages(&self, projection: &str) -> Result<Vec<RogueMessage>> {
        let state = self.state();
        Ok(state.rogue.iter().filter(|((p, _), _)| p == projection).map(|(_, m)| m.clone()).collect())
    }

    async fn skip_rogue(&self, tx: &mut MemoryTx, projection: &str, key: Option<&str>) -> Result<u64> {
        tx.rogue_skipped.push((projection.to_owned(), key.map(str::to_owned)));
        let state = self.state();
        let parked = state.rogue.iter().filter(|((p, k), m)| {
            p == projection && key.is_none_or(|key| key == k) && m.status == DeadLetterStatus::Parked
        });
        Ok(parked.count() as u64)
    }

    async fn set_up_version(&self, tx: &mut MemoryTx, projection: &str) -> Result<Option<u32>> {
        self.take_lock(tx, format!("setup:{projection}")).await;
        tx.namespace = Some(projection.to_owned());
        Ok(self.state().set_up.get(projection).copied())
    }

    async fn lock_projection(&self, tx: &mut MemoryTx, projection: &str) -> Result<()> {
        let mut partitions: Vec<u32> =
            self.state().partitions.keys().filter(|(p, _)| p == projection).map(|(_, n)| *n).collect();
        partitions.sort_unstable();
        for partition in partitions {
            self.take_lock(tx, format!("partition:{projection}:{partition}")).await;
        }
        Ok(())
    }

    async fn swap(&self, tx: &mut MemoryTx, live: &str, shadow: &str, version: u32) -> Result<()> {
        tx.renames.push(Rename::Swap { live: live.to_owned(), shadow: shadow.to_owned(), version });
        Ok(())
    }

    async fn drop_projection(&self, tx: &mut MemoryTx, projection: &str) -> Result<()> {
        tx.renames.push(Rename::Drop(projection.to_owned()));
        Ok(())
    }

    async fn create_namespace(&self, _tx: &mut MemoryTx, _projection: &str) -> Result<()> {
        Ok(())
    }

    async fn mark_set_up(&self, tx: &mut MemoryTx, projection: &str, version: u32) -> Result<()> {
        tx.set_up = Some((projection.to_owned(), version));
        Ok(())
    }

    async fn paused(&self, projection: &str) -> Result<bool> {
        Ok(self.state().paused.contains(projection))
    }

    async fn set_paused(&self, projection: &str, paused: bool) -> Result<bool> {
        let mut state = self.state();
        Ok(if paused { state.paused.insert(projection.to_owned()) } else { state.paused.remove(projection) })
    }

    async fn stream_seen(&self, projection: &str, stream: &StreamId) -> Result<StreamVersion> {
        let seen = self.state().streams.get(&(projection.to_owned(), stream.clone())).map(|s| s.version);
        Ok(seen.unwrap_or_default())
    }

    async fn partitions(&self, projection: &str) -> Result<Vec<(u32, PartitionState)>> {
        let state = self.state();
        let mut all: Vec<_> =
            state.partitions.iter().filter(|((p, _), _)| p == projection).map(|((_, n), s)| (*n, *s)).collect();
        all.sort_by_key(|(n, _)| *n);
        Ok(all)
    }

    async fn seen_streams(
        &self,
        projection: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<(StreamId, Seen)>> {
        let state = self.state();
        let mut all: Vec<(StreamId, Seen)> = state
            .streams
            .iter()
            .filter(|((p, s), _)| p == projection && after.is_none_or(|a| s.as_str() > a.as_str()))
            .map(|((_, s), seen)| (s.clone(), *seen))
            .collect();
        all.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        all.truncate(limit);
        Ok(all)
    }
}

//! Read models in memory, for the embedded mode and fast tests: the same bookkeeping and
//! document API as PostgreSQL, with transactions that stage their writes and apply them at
//! commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tidemark::{StreamId, StreamVersion};
use tokio::sync::OwnedMutexGuard;

use crate::error::Result;
use crate::feed::FeedCursor;
use crate::letters::{DeadLetter, DeadLetterStatus, RogueMessage};
use crate::optimisations::BatchOptimisations;
use crate::read_models::{PartitionState, Progress, ReadModels, Seen};

mod admin;
mod documents;

/// Projection, collection, key.
type DocKey = (String, String, String);

#[derive(Debug, Default)]
struct State {
    partitions: HashMap<(String, u32), PartitionState>,
    streams: HashMap<(String, StreamId), Seen>,
    dead_letters: BTreeMap<(String, StreamId, StreamVersion), DeadLetter>,
    rogue: BTreeMap<(String, String), RogueMessage>,
    set_up: HashMap<String, u32>,
    documents: BTreeMap<DocKey, Value>,
    paused: HashSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Read models held in memory. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryReadModels {
    inner: Arc<Inner>,
}

/// A batch's transaction in memory: writes are staged and applied at commit.
#[derive(Debug)]
pub struct MemoryTx {
    inner: Arc<Inner>,
    namespace: Option<String>,
    _locks: Vec<OwnedMutexGuard<()>>,
    /// The names of the locks held, each taken once.
    held: Vec<String>,
    documents: BTreeMap<DocKey, Option<Value>>,
    progress: Vec<(String, u32, Progress)>,
    taken: Vec<(String, StreamId)>,
    rogue_skipped: Vec<(String, Option<String>)>,
    set_up: Option<(String, u32)>,
    renames: Vec<Rename>,
}

/// A projection's data moved (a rebuild's swap) or dropped, at commit.
#[derive(Debug)]
enum Rename {
    Swap { live: String, shadow: String, version: u32 },
    Drop(String),
}

impl MemoryReadModels {
    /// Empty read models.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    async fn take_lock(&self, tx: &mut MemoryTx, name: String) {
        if tx.held.contains(&name) {
            return;
        }
        tx.held.push(name.clone());
        let mutex = lock(&self.inner.locks).entry(name).or_default().clone();
        tx._locks.push(mutex.lock_owned().await);
    }
}

impl State {
    fn apply(&mut self, rename: &Rename) {
        match rename {
            Rename::Drop(name) => self.drop(name),
            Rename::Swap { live, shadow, version } => {
                self.drop_data(live);
                let rename = |p: &String| if p == shadow { live.clone() } else { p.clone() };
                let documents = std::mem::take(&mut self.documents);
                self.documents = documents.into_iter().map(|((p, c, k), v)| ((rename(&p), c, k), v)).collect();
                let streams = std::mem::take(&mut self.streams);
                self.streams = streams.into_iter().map(|((p, s), v)| ((rename(&p), s), v)).collect();
                let letters = std::mem::take(&mut self.dead_letters);
                self.dead_letters = letters.into_iter().map(|((p, s, n), l)| ((rename(&p), s, n), l)).collect();
                self.partitions.retain(|(p, _), _| p != shadow);
                self.set_up.remove(shadow);
                self.set_up.insert(live.clone(), *version);
            }
        }
    }

    fn drop_data(&mut self, name: &str) {
        self.documents.retain(|(p, _, _), _| p != name);
        self.streams.retain(|(p, _), _| p != name);
        self.dead_letters.retain(|(p, _, _), _| p != name);
    }

    fn drop(&mut self, name: &str) {
        self.drop_data(name);
        // Rogue messages belong to the live consumers, which a rebuild's swap keeps.
        self.rogue.retain(|(p, _), _| p != name);
        self.partitions.retain(|(p, _), _| p != name);
        self.set_up.remove(name);
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it: every write
/// under these locks leaves the state consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ReadModels for MemoryReadModels {
    type Tx = MemoryTx;

    async fn begin(&self) -> Result<MemoryTx> {
        Ok(MemoryTx {
            inner: self.inner.clone(),
            namespace: None,
            _locks: Vec::new(),
            held: Vec::new(),
            documents: BTreeMap::new(),
            progress: Vec::new(),
            taken: Vec::new(),
            rogue_skipped: Vec::new(),
            set_up: None,
            renames: Vec::new(),
        })
    }

    async fn begin_batch(&self, projection: &str, partition: u32) -> Result<MemoryTx> {
        let mut tx = self.begin().await?;
        self.lock_partition(&mut tx, projection, partition).await?;
        Ok(tx)
    }

    async fn commit(&self, tx: MemoryTx) -> Result<()> {
        let mut state = self.state();
        for rename in &tx.renames {
            state.apply(rename);
        }
        for (key, body) in tx.documents {
            match body {
                Some(body) => state.documents.insert(key, body),
                None => state.documents.remove(&key),
            };
        }
        for (projection, stream) in tx.taken {
            state
                .dead_letters
                .retain(|(p, s, _), l| !(*p == projection && *s == stream && l.status == DeadLetterStatus::Parked));
            if let Some(seen) = state.streams.get_mut(&(projection, stream)) {
                seen.parked = false;
            }
        }
        for (projection, partition, progress) in tx.progress {
            for (stream, new) in progress.streams {
                let seen = state.streams.entry((projection.clone(), stream)).or_default();
                *seen = Seen { version: seen.version.max(new.version), parked: new.parked };
            }
            for letter in progress.dead_letters {
                let key = (projection.clone(), letter.stream_id.clone(), letter.stream_version);
                state.dead_letters.insert(key, letter);
            }
            for message in progress.rogue {
                state.rogue.insert((projection.clone(), message.key.clone()), message);
            }
            let saved = state.partitions.entry((projection, partition)).or_default();
            saved.position = saved.position.max(progress.position);
            saved.cursor = later_cursor(saved.cursor, progress.cursor);
            saved.events += progress.events;
        }
        for (projection, key) in tx.rogue_skipped {
            let chosen = |(p, k): &(String, String)| *p == projection && key.as_ref().is_none_or(|key| key == k);
            for (_, message) in state.rogue.iter_mut().filter(|(k, _)| chosen(k)) {
                message.status = DeadLetterStatus::Skipped;
            }
        }
        if let Some((projection, version)) = tx.set_up {
            state.set_up.insert(projection, version);
        }
        Ok(())
    }

    async fn lock_partition(&self, tx: &mut MemoryTx, projection: &str, partition: u32) -> Result<PartitionState> {
        self.take_lock(tx, format!("partition:{projection}:{partition}")).await;
        tx.namespace = Some(projection.to_owned());
        Ok(self.state().partitions.get(&(projection.to_owned(), partition)).copied().unwrap_or_default())
    }

    async fn seen_versions(
        &self,
        _tx: &mut MemoryTx,
        projection: &str,
        streams: &[StreamId],
    ) -> Result<HashMap<StreamId, Seen>> {
        let state = self.state();
        let seen = streams
            .iter()
            .filter_map(|s| state.streams.get(&(projection.to_owned(), s.clone())).map(|v| (s.clone(), *v)))
            .collect();
        Ok(seen)
    }

    async fn record(&self, tx: &mut MemoryTx, projection: &str, partition: u32, progress: &Progress) -> Result<()> {
        tx.progress.push((projection.to_owned(), partition, progress.clone()));
        Ok(())
    }
}

impl BatchOptimisations for MemoryReadModels {
    fn undoes_batches(&self) -> bool {
        true
    }

    async fn undo_batch(&self, tx: &mut MemoryTx) -> Result<()> {
        tx.documents.clear();
        tx.progress.clear();
        tx.taken.clear();
        tx.rogue_skipped.clear();
        tx.set_up = None;
        tx.renames.clear();
        Ok(())
    }
}

/// The cursor a partition keeps when a batch records `new`: the later of the two within
/// one epoch; a cursor of a new epoch replaces the old one.
pub(crate) fn later_cursor(saved: Option<FeedCursor>, new: Option<FeedCursor>) -> Option<FeedCursor> {
    match (saved, new) {
        (Some(old), Some(new)) if old.epoch == new.epoch && old.sequence > new.sequence => Some(old),
        (old, None) => old,
        (_, new) => new,
    }
}

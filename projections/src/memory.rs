//! Read models in memory, for the embedded mode and fast tests: the same bookkeeping and
//! document API as PostgreSQL, with transactions that stage their writes and apply them at
//! commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tidemark::StreamId;
use tokio::sync::OwnedMutexGuard;

use crate::documents::{DocumentReader, DocumentTx};
use crate::error::{ApplyError, Result};
use crate::feed::FeedCursor;
use crate::read_models::{DeadLetter, DeadLetterStatus, PartitionState, Progress, ReadModels, RogueMessage, Seen};

/// Projection, collection, key.
type DocKey = (String, String, String);

#[derive(Debug, Default)]
struct State {
    partitions: HashMap<(String, u32), PartitionState>,
    streams: HashMap<(String, StreamId), Seen>,
    dead_letters: BTreeMap<(String, StreamId, u64), DeadLetter>,
    rogue: BTreeMap<(String, String), RogueMessage>,
    set_up: HashMap<String, u32>,
    documents: BTreeMap<DocKey, Value>,
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

    async fn stream_seen(&self, projection: &str, stream: &StreamId) -> Result<u64> {
        Ok(self.state().streams.get(&(projection.to_owned(), stream.clone())).map_or(0, |s| s.version))
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

impl MemoryTx {
    fn key(&self, collection: &str, key: &str) -> Result<DocKey, ApplyError> {
        let namespace = self.namespace.clone().ok_or("documents are written inside a projection's batch")?;
        Ok((namespace, collection.to_owned(), key.to_owned()))
    }
}

impl DocumentTx for MemoryTx {
    async fn get(&mut self, collection: &str, key: &str) -> Result<Option<Value>, ApplyError> {
        let id = self.key(collection, key)?;
        if let Some(staged) = self.documents.get(&id) {
            return Ok(staged.clone());
        }
        Ok(lock(&self.inner.state).documents.get(&id).cloned())
    }

    async fn put(&mut self, collection: &str, key: &str, body: Value) -> Result<(), ApplyError> {
        let id = self.key(collection, key)?;
        self.documents.insert(id, Some(body));
        Ok(())
    }

    async fn delete(&mut self, collection: &str, key: &str) -> Result<(), ApplyError> {
        let id = self.key(collection, key)?;
        self.documents.insert(id, None);
        Ok(())
    }
}

impl DocumentReader for MemoryReadModels {
    async fn document(&self, projection: &str, collection: &str, key: &str) -> Result<Option<Value>> {
        let id = (projection.to_owned(), collection.to_owned(), key.to_owned());
        Ok(self.state().documents.get(&id).cloned())
    }

    async fn documents(
        &self,
        projection: &str,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        let state = self.state();
        let from = (projection.to_owned(), collection.to_owned(), prefix.to_owned());
        let found = state
            .documents
            .range(from..)
            .take_while(|((p, c, k), _)| p == projection && c == collection && k.starts_with(prefix))
            .take(limit)
            .map(|((_, _, k), v)| (k.clone(), v.clone()))
            .collect();
        Ok(found)
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

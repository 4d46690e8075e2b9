//! A bounded cache of aggregate states, so commands on hot streams skip the load.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

use crate::stream_id::StreamId;
use crate::version::StreamVersion;

/// Least-recently-used states by stream. A state is *taken* while a command decides on
/// it, so two commands on one stream in one process never share a state; the second
/// simply loads from the store.
pub(crate) struct StateCache<A> {
    entries: Mutex<LruCache<StreamId, (A, StreamVersion)>>,
}

impl<A> StateCache<A> {
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        Self { entries: Mutex::new(LruCache::new(capacity)) }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.lock().cap().get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<StreamId, (A, StreamVersion)>> {
        // The cache holds no invariant a panic could break half-way.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn take(&self, stream: &StreamId) -> Option<(A, StreamVersion)> {
        self.lock().pop(stream)
    }

    pub(crate) fn put(&self, stream: StreamId, state: A, version: StreamVersion) {
        self.lock().put(stream, (state, version));
    }
}

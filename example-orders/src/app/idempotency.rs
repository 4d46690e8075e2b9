//! `Idempotency-Key`: a retried request gets the first one's response.
//!
//! Keys are per user. Each remembers the fingerprint of its request (method, path, body)
//! and the 202 it was answered with. Only acceptances are kept: a refused request
//! (400/422) is refused again on retry anyway. The store is bounded; an evicted key is
//! still safe, because the command and order ids are derived from the key, so the event
//! store records a replayed command once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::Accepted;

/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// A request's fingerprint: SHA-256 of method, path and body.
pub type Fingerprint = [u8; 32];

/// Fingerprints a request.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Fingerprint {
    let mut hash = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// What is known about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Never seen (or forgotten).
    New,
    /// Seen with the same request: answer the same.
    Replay(Accepted),
    /// Seen with a different request.
    Reused,
}

type Key = (String, String);

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, (Fingerprint, Accepted)>,
    order: VecDeque<Key>,
}

/// Remembered keys, the most recent `capacity` of them.
#[derive(Debug)]
pub struct IdempotencyStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl IdempotencyStore {
    /// Keeps up to `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::default(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks a key up.
    pub fn lookup(&self, user: &str, key: &str, fingerprint: &Fingerprint) -> Lookup {
        match self.lock().entries.get(&(user.to_owned(), key.to_owned())) {
            None => Lookup::New,
            Some((seen, accepted)) if seen == fingerprint => Lookup::Replay(accepted.clone()),
            Some(_) => Lookup::Reused,
        }
    }

    /// Remembers a key's response unless another request with the key got there first;
    /// returns what the key now answers.
    pub fn remember(&self, user: &str, key: &str, fingerprint: Fingerprint, accepted: Accepted) -> Lookup {
        let mut inner = self.lock();
        let id = (user.to_owned(), key.to_owned());
        if let Some((seen, first)) = inner.entries.get(&id) {
            return if *seen == fingerprint { Lookup::Replay(first.clone()) } else { Lookup::Reused };
        }
        inner.entries.insert(id.clone(), (fingerprint, accepted.clone()));
        inner.order.push_back(id);
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.entries.remove(&old);
            }
        }
        Lookup::Replay(accepted)
    }

    /// Forgets a key, so its next request runs again.
    pub fn forget(&self, user: &str, key: &str) {
        let mut inner = self.lock();
        let id = (user.to_owned(), key.to_owned());
        if inner.entries.remove(&id).is_some() {
            inner.order.retain(|k| *k != id);
        }
    }
}

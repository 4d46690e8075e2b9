//! The outcome hub: which sockets each user holds, and pushing notices to them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::notice::Notice;

type Sockets = HashMap<u64, mpsc::Sender<Arc<str>>>;

/// User → sockets. Each socket has a bounded queue; a socket whose queue is full is
/// dropped from the hub (its task then ends and closes it, and the page reconnects)
/// rather than slowing down everyone else's notices.
#[derive(Debug)]
pub struct Hub {
    users: Mutex<HashMap<String, Sockets>>,
    next_id: AtomicU64,
    buffer: usize,
}

impl Hub {
    /// An empty hub whose sockets queue up to `buffer` messages each.
    pub fn new(buffer: usize) -> Self {
        Self { users: Mutex::default(), next_id: AtomicU64::new(1), buffer: buffer.max(1) }
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, Sockets>> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a socket of `user`: its id and the queue to drain into the socket.
    pub fn register(&self, user: &str) -> (u64, mpsc::Receiver<Arc<str>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(self.buffer);
        self.users().entry(user.to_owned()).or_default().insert(id, sender);
        (id, receiver)
    }

    /// Removes a socket.
    pub fn unregister(&self, user: &str, id: u64) {
        let mut users = self.users();
        if let Some(sockets) = users.get_mut(user) {
            sockets.remove(&id);
            if sockets.is_empty() {
                users.remove(user);
            }
        }
    }

    /// Drops every socket's queue, which ends and closes the sockets (at shutdown).
    pub fn close_all(&self) {
        self.users().clear();
    }

    /// How many sockets `user` holds.
    pub fn sockets(&self, user: &str) -> usize {
        self.users().get(user).map_or(0, HashMap::len)
    }

    /// Pushes a notice to every socket of `user`.
    pub fn send(&self, user: &str, notice: &Notice) {
        let text: Arc<str> = match serde_json::to_string(notice) {
            Ok(text) => text.into(),
            Err(error) => {
                tracing::error!(%error, "cannot serialise a notice");
                return;
            }
        };
        let mut users = self.users();
        let Some(sockets) = users.get_mut(user) else { return };
        sockets.retain(|id, sender| match sender.try_send(text.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!(user, socket = id, "a socket is not keeping up; closing it");
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
        if sockets.is_empty() {
            users.remove(user);
        }
    }
}

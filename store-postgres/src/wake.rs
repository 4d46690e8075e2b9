//! Waking log readers after commit: directly in this process, by a coalesced NOTIFY
//! in others, with polling as the fallback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::warm::WarmConnections;

/// Shared wake-up state of one store (and its clones).
#[derive(Debug)]
pub(crate) struct Wake {
    generation: watch::Sender<u64>,
    notify: Option<mpsc::Sender<()>>,
    listening: AtomicBool,
    shutdown: watch::Sender<()>,
}

impl Wake {
    /// Starts the notifier task (when `notify` is on); needs a tokio runtime.
    pub(crate) fn new(warm: &Arc<WarmConnections>, channel: &str, notify: Option<Duration>) -> Self {
        let notify = notify.map(|interval| {
            let (sender, rx) = mpsc::channel(1);
            tokio::spawn(notifier(warm.clone(), channel.to_owned(), rx, interval));
            sender
        });
        Self {
            generation: watch::Sender::new(0),
            notify,
            listening: AtomicBool::new(false),
            shutdown: watch::Sender::new(()),
        }
    }

    /// Called after every committed append that wrote events.
    pub(crate) fn appended(&self) {
        self.bump();
        if let Some(tx) = &self.notify {
            // Full means a NOTIFY is already pending: this append is covered by it.
            let _ = tx.try_send(());
        }
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver that sees every later wake-up; starts the listener on first use.
    pub(crate) fn subscribe(&self, pool: &PgPool, channel: &str) -> watch::Receiver<u64> {
        if !self.listening.swap(true, Ordering::AcqRel) {
            let shutdown = self.shutdown.subscribe();
            tokio::spawn(listener(pool.clone(), channel.to_owned(), self.generation.clone(), shutdown));
        }
        self.generation.subscribe()
    }
}

/// Sends one NOTIFY per burst of appends: one at a time, so the appends committed while
/// one is sent share the next, and at most one per `interval` when that is not zero (each
/// NOTIFY is a transaction of its own on the server); ends when the store is dropped.
/// Sent on a warm connection, like the appends it follows.
async fn notifier(warm: Arc<WarmConnections>, channel: String, mut rx: mpsc::Receiver<()>, interval: Duration) {
    while rx.recv().await.is_some() {
        let started = tokio::time::Instant::now();
        if let Err(error) = notify(&warm, &channel).await {
            tracing::debug!(%error, "NOTIFY after append failed; readers fall back to polling");
        }
        if !interval.is_zero() {
            tokio::time::sleep_until(started + interval).await;
        }
    }
}

async fn notify(warm: &WarmConnections, channel: &str) -> Result<(), sqlx::Error> {
    let mut conn = warm.take().await?;
    sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&mut *conn).await?;
    conn.keep();
    Ok(())
}

/// Turns notifications into wake-ups. A lost connection may lose notifications, so
/// every reconnect counts as a wake-up too.
async fn listener(pool: PgPool, channel: String, generation: watch::Sender<u64>, mut shutdown: watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match connect(&pool, &channel).await {
            Ok(l) => {
                backoff = Duration::from_millis(100);
                l
            }
            // The pool was closed on purpose: nobody will read through this store again.
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for new events; polling until it works again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        generation.send_modify(|g| *g = g.wrapping_add(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                message = listener.try_recv() => {
                    generation.send_modify(|g| *g = g.wrapping_add(1));
                    if message.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

async fn connect(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

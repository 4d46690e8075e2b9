//! The relay: the elected leader publishes the global log to JetStream from its checkpoint.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ContextBuilder;
use async_nats::jetstream::stream::Info;
use async_nats::jetstream::Context;
use tidemark::LogPosition;
use tidemark_postgres::{LogTail, LogWatch, PgEventStore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::RelayConfig;
use crate::downcast::Downcasts;
use crate::error::RelayError;
use crate::leader::{lock_key, Candidate, Leadership};
use crate::publish::Publisher;
use crate::retry::{sleep_unless_cancelled, Backoff};
use crate::signature::MessageKey;
use crate::status::{RelayMonitor, RelayRole, RelayStatus, Stats};
use crate::stream::{ensure_stream, StreamError, StreamSettings};

/// Publishes every event of a [`PgEventStore`]'s global log to JetStream, once and in log
/// order (the transactional outbox pattern). Cloning shares the relay and its counters.
///
/// Run one or more instances with the same name: one leads (PostgreSQL advisory lock),
/// the others stand by and take over when it dies. See the crate documentation for the
/// subjects, headers and guarantees.
///
/// ```no_run
/// # async fn demo(store: tidemark_postgres::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// use tidemark_nats::{NatsRelay, RelayConfig, StreamSettings};
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let relay = NatsRelay::new(store, client, RelayConfig::new("main"))?;
/// relay.ensure_stream(&StreamSettings::new("TIDEMARK")).await?;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// let task = tokio::spawn({
///     let (relay, shutdown) = (relay.clone(), shutdown.clone());
///     async move { relay.run(shutdown).await }
/// });
/// // ... later:
/// shutdown.cancel();
/// task.await??;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsRelay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: PgEventStore,
    jetstream: Context,
    config: RelayConfig,
    downcasts: Downcasts,
    checkpoint: String,
    lock_key: i64,
    stats: Arc<Stats>,
}

/// How long a relay on its way out (shutdown, failure) tries to save its checkpoint.
const SAVE_ON_THE_WAY_OUT: Duration = Duration::from_secs(2);

/// The last checkpoint saved, when, and when the leadership was last checked.
struct Saved {
    position: LogPosition,
    at: Instant,
    checked: Instant,
}

/// Delays before reading again events held back behind the horizon: 1 ms, doubling;
/// since when they have been held back (exported as a gauge).
struct HeldBack {
    next: Duration,
    max: Duration,
    since: Option<Instant>,
}

impl HeldBack {
    const FIRST: Duration = Duration::from_millis(1);

    fn new(max: Duration) -> Self {
        crate::metrics::held_back(Duration::ZERO);
        Self { next: Self::FIRST, max, since: None }
    }

    fn next_wait(&mut self) -> Duration {
        let since = *self.since.get_or_insert_with(Instant::now);
        crate::metrics::held_back(since.elapsed());
        let wait = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
        if self.since.take().is_some() {
            crate::metrics::held_back(Duration::ZERO);
        }
    }
}

/// Reads the next page after `after`, marking the wake-ups so far as seen first.
async fn read(
    store: &PgEventStore,
    watch: &mut LogWatch,
    after: LogPosition,
    limit: usize,
) -> Result<LogTail, RelayError> {
    watch.mark();
    store.read_tail(after, limit).await.map_err(RelayError::Store)
}

/// How leading ended without an error.
enum Ended {
    Shutdown,
    LostLeadership,
}

impl NatsRelay {
    /// Validates the configuration and prepares a relay; nothing connects until `run`.
    ///
    /// The relay publishes through its own JetStream context on `client`, whose timeout
    /// is `publish_timeout` and which lets at most `2 × max_in_flight` acks be pending.
    pub fn new(store: PgEventStore, client: async_nats::Client, config: RelayConfig) -> Result<Self, RelayError> {
        config.validate()?;
        let jetstream = ContextBuilder::new()
            .timeout(config.publish_timeout)
            .ack_timeout(config.publish_timeout)
            .max_ack_inflight(config.max_in_flight.saturating_mul(2))
            .build(client);
        let lock_key = lock_key(&store.config().schema, &config.name);
        let checkpoint = config.checkpoint_name();
        let stats = Arc::new(Stats::default());
        let downcasts = Downcasts::new(&config.downcasters);
        Ok(Self { inner: Arc::new(Inner { store, jetstream, config, downcasts, checkpoint, lock_key, stats }) })
    }

    /// The store it publishes.
    pub fn store(&self) -> &PgEventStore {
        &self.inner.store
    }

    /// The key of its leader lock (a PostgreSQL advisory lock).
    #[cfg(feature = "cli")]
    pub(crate) fn lock_key(&self) -> i64 {
        self.inner.lock_key
    }

    /// The name its checkpoint is saved under.
    #[cfg(feature = "cli")]
    pub(crate) fn checkpoint_name(&self) -> &str {
        &self.inner.checkpoint
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// The JetStream context the relay publishes with.
    pub fn jetstream(&self) -> &Context {
        &self.inner.jetstream
    }

    /// A handle that reads the relay's status, for metrics and health checks.
    pub fn monitor(&self) -> RelayMonitor {
        RelayMonitor(Arc::clone(&self.inner.stats))
    }

    /// The current status.
    pub fn status(&self) -> RelayStatus {
        self.monitor().status()
    }

    /// Creates or updates the stream for this relay's subjects, warning when its
    /// duplicate window is shorter than the relay's retry horizon.
    pub async fn ensure_stream(&self, settings: &StreamSettings) -> Result<Info, StreamError> {
        let config = &self.inner.config;
        ensure_stream(&self.inner.jetstream, &config.subjects, settings, config.retry_horizon).await
    }

    /// Runs until `shutdown` is cancelled (then returns `Ok`) or an error that retrying
    /// cannot fix (see [`RelayError::is_retryable`]). Stands by while another relay of the
    /// same name leads; leads, from the saved checkpoint, when it can.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), RelayError> {
        crate::metrics::relay_started();
        let result = self.run_until_stopped(&shutdown).await;
        self.inner.stats.set_role(RelayRole::Stopped);
        if let Err(error) = &result {
            tracing::error!(relay = %self.inner.config.name, %error, "relay stopped by an error it cannot retry");
        }
        result
    }

    async fn run_until_stopped(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let config = &self.inner.config;
        let mut candidate = Candidate::new(&self.inner.store.pool().connect_options(), self.inner.lock_key);
        let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
        loop {
            let Some(mut leadership) = self.await_leadership(&mut candidate, &mut backoff, shutdown).await? else {
                return Ok(());
            };
            let ended = self.lead(&mut leadership, &mut backoff, shutdown).await;
            leadership.release().await;
            match ended? {
                Ended::Shutdown => return Ok(()),
                Ended::LostLeadership => self.inner.stats.set_role(RelayRole::Standby),
            }
        }
    }

    /// Polls for the leader lock; `None` on shutdown.
    async fn await_leadership(
        &self,
        candidate: &mut Candidate,
        backoff: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> Result<Option<Leadership>, RelayError> {
        let (name, stats) = (&self.inner.config.name, &self.inner.stats);
        loop {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            let wait = match candidate.try_lead().await {
                Ok(Some(leadership)) => {
                    tracing::info!(relay = %name, "relay took the leadership");
                    stats.became_leader();
                    backoff.reset();
                    return Ok(Some(leadership));
                }
                Ok(None) => {
                    if stats.role() != RelayRole::Standby {
                        tracing::info!(relay = %name, "another relay of this name leads; standing by");
                        stats.set_role(RelayRole::Standby);
                    }
                    backoff.reset();
                    self.inner.config.standby_poll
                }
                Err(error) if error.is_retryable() => {
                    stats.failed();
                    let delay = backoff.next_delay();
                    tracing::warn!(relay = %name, %error, retry_in = ?delay, "cannot ask PostgreSQL for the leader lock");
                    delay
                }
                Err(error) => return Err(error),
            };
            if !sleep_unless_cancelled(wait, shutdown).await {
                return Ok(None);
            }
        }
    }

    /// Publishes as the leader, retrying after failures, until shutdown, a fatal error,
    /// or the loss of the lock's connection.
    async fn lead(
        &self,
        leadership: &mut Leadership,
        backoff: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> Result<Ended, RelayError> {
        let (name, stats) = (&self.inner.config.name, &self.inner.stats);
        loop {
            stats.set_role(RelayRole::Leading);
            let error = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.save_acknowledged().await;
                    return Ok(Ended::Shutdown);
                }
                result = self.publish_log(leadership, backoff) => match result {
                    Err(error) => error,
                    Ok(never) => match never {},
                },
            };
            self.save_acknowledged().await;
            if !error.is_retryable() {
                return Err(error);
            }
            stats.failed();
            stats.set_role(RelayRole::Retrying);
            let delay = backoff.next_delay();
            tracing::warn!(relay = %name, %error, retry_in = ?delay, "relay failed; it resumes from its checkpoint");
            if !sleep_unless_cancelled(delay, shutdown).await {
                return Ok(Ended::Shutdown);
            }
            if let Err(error) = leadership.check().await {
                tracing::warn!(relay = %name, %error, "the leader lock's connection is lost; standing by");
                return Ok(Ended::LostLeadership);
            }
        }
    }

    /// The publishing loop, from the saved checkpoint; returns only with an error.
    ///
    /// A batch is published as soon as it is read. The next one is read while it is
    /// published when it was full; otherwise only when a wake-up came in the meantime, or
    /// events were held back behind the horizon (those are read again after 1, 2, 4, ...
    /// ms: the transaction holding them back may end without a wake-up). The checkpoint is
    /// saved, and the leadership checked, at most once per `checkpoint_interval`.
    async fn publish_log(&self, leadership: &mut Leadership, backoff: &mut Backoff) -> Result<Infallible, RelayError> {
        let Inner { store, config, downcasts, stats, .. } = &*self.inner;
        let key = MessageKey::load(store).await.map_err(RelayError::Key)?;
        let publisher = Publisher { jetstream: &self.inner.jetstream, config, downcasts, stats, key: &key };
        let mut watch = store.watch_log();
        let mut cursor = store.load_checkpoint(&self.inner.checkpoint).await.map_err(RelayError::Store)?;
        stats.checkpoint(cursor);
        let mut saved = Saved { position: cursor, at: Instant::now(), checked: Instant::now() };
        let mut held = HeldBack::new(config.idle_wait);
        let mut tail = read(store, &mut watch, cursor, config.batch_size).await?;
        loop {
            let Some(last) = tail.events.last().map(|event| event.position) else {
                if saved.position < cursor && saved.at.elapsed() >= config.checkpoint_interval {
                    self.checkpoint(leadership, cursor, &mut saved).await?;
                }
                let mut wait = if tail.held_back {
                    held.next_wait()
                } else {
                    held.reset();
                    config.idle_wait
                };
                if saved.position < cursor {
                    wait = wait.min(config.checkpoint_interval.saturating_sub(saved.at.elapsed()));
                }
                let woken = watch.wait(wait).await;
                if !woken && saved.checked.elapsed() >= config.idle_wait {
                    leadership.check().await?;
                    saved.checked = Instant::now();
                }
                tail = read(store, &mut watch, cursor, config.batch_size).await?;
                continue;
            };
            held.reset();
            let (published, next) = if tail.events.len() >= config.batch_size {
                let next = read(store, &mut watch, last, config.batch_size);
                let (published, next) = tokio::join!(publisher.publish(&tail.events), next);
                (published, Some(next))
            } else {
                (publisher.publish(&tail.events).await, None)
            };
            if let Err(failed) = published {
                if let Some(acked) = failed.acked_to {
                    // Best effort: a failure here only means more republishing later.
                    let _ = self.save_checkpoint(acked, false).await;
                }
                return Err(failed.error);
            }
            cursor = last;
            if saved.at.elapsed() >= config.checkpoint_interval {
                self.checkpoint(leadership, cursor, &mut saved).await?;
            }
            backoff.reset();
            tail = match next {
                Some(next) => next?,
                None if watch.woken() || tail.held_back => read(store, &mut watch, cursor, config.batch_size).await?,
                None => LogTail::default(),
            };
        }
    }

    /// Saves the checkpoint at `position` and checks the leadership, at once.
    async fn checkpoint(
        &self,
        leadership: &mut Leadership,
        position: LogPosition,
        saved: &mut Saved,
    ) -> Result<(), RelayError> {
        let (checked, stored) = tokio::join!(leadership.check(), self.save_checkpoint(position, false));
        checked?;
        stored?;
        let now = Instant::now();
        *saved = Saved { position, at: now, checked: now };
        Ok(())
    }

    /// Saves the checkpoint past every event acknowledged since the last save, if any
    /// (best effort: on the way out, after a failure or at shutdown).
    async fn save_acknowledged(&self) {
        let Some(acked) = self.inner.stats.unsaved() else { return };
        let saving = tokio::time::timeout(SAVE_ON_THE_WAY_OUT, self.save_checkpoint(acked, true)).await;
        if !matches!(saving, Ok(Ok(()))) {
            tracing::debug!(relay = %self.inner.config.name, "could not save the checkpoint on the way out");
        }
    }

    /// Saves the checkpoint; `durable` waits for the WAL flush. Saves while running do not:
    /// a crash that takes one back only makes the relay republish what JetStream then
    /// drops as duplicates, and the flush would stand in the appends' way.
    async fn save_checkpoint(&self, position: LogPosition, durable: bool) -> Result<(), RelayError> {
        let (store, name) = (&self.inner.store, &self.inner.checkpoint);
        let saved = if durable {
            store.save_checkpoint(name, position).await
        } else {
            store.save_checkpoint_relaxed(name, position).await
        };
        saved.map_err(RelayError::Store)?;
        self.inner.stats.checkpoint(position);
        Ok(())
    }
}

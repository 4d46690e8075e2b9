//! The PostgreSQL feed: runners read the store's gap-safe log themselves, with no broker
//! and no relay between. A subscription follows the whole log (LISTEN wake-ups, a poll as
//! fallback) and keeps the events of its partition.
//!
//! The cursor of an event is its log position: epoch = the id of the transaction that
//! wrote it, sequence = its global sequence. Two cursors of one epoch are thus two events
//! of one transaction, ordered by sequence, so the runtime's rule "forward only within an
//! epoch, replaced by a new epoch" is exact; a cursor of a later transaction is later in
//! the log.

use std::collections::VecDeque;
use std::time::Duration;

use tidemark::{LogPosition, RecordedEvent, StreamId};
use tidemark_postgres::{LogWatch, PgEventStore, PgTenantStore};
use tidemark_projections::{Delivery, Feed, FeedCursor, Incoming, ProjectionError, Result, Subscription};

/// Default events read per page of the log.
const PAGE: usize = 1_000;

/// Default wait before reading again a page that said events are held back.
const HELD_BACK_RETRY: Duration = Duration::from_millis(10);

/// A [`Feed`] that reads the PostgreSQL event store's log directly: every process needs
/// the database only, no NATS. Partitions are those of [`StreamId::partition`], as for
/// the other feeds, and are shared between runner instances by the same coordination.
///
/// Events are delivered as [`Incoming::Trusted`] (they come from the store itself), in log
/// order, without a gap: a page that says events are held back behind an older running
/// transaction is read again after [`held_back_retry`](Self::held_back_retry), not only
/// on the next wake-up.
///
/// Cost: each subscription reads the whole log and keeps its partition's events, so with
/// `n` partitions the log is read `n` times per projection.
#[derive(Debug, Clone)]
pub struct PgLogFeed {
    store: PgEventStore,
    /// Set by [`PgLogFeed::of_tenant`]: only this tenant's events are delivered.
    tenant: Option<PgTenantStore>,
    partitions: u32,
    page: usize,
    held_back_retry: Duration,
}

impl PgLogFeed {
    /// A feed of `store`'s log in `partitions` partitions (at least 1).
    pub fn new(store: PgEventStore, partitions: u32) -> Result<Self> {
        if partitions == 0 {
            return Err(ProjectionError::Config("a feed needs at least one partition"));
        }
        Ok(Self { store, tenant: None, partitions, page: PAGE, held_back_retry: HELD_BACK_RETRY })
    }

    /// A feed of one tenant's events only, read from the tenant's part of the log (its
    /// index of migration 1004), in `partitions` partitions: a projection run per tenant,
    /// whose read model never sees another tenant's events. Every append to the store
    /// still wakes its subscriptions; another tenant's costs them one empty read.
    pub fn of_tenant(view: PgTenantStore, partitions: u32) -> Result<Self> {
        let feed = Self::new(view.unscoped().clone(), partitions)?;
        Ok(Self { tenant: Some(view), ..feed })
    }

    /// The tenant this feed is limited to, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_ref().map(PgTenantStore::tenant)
    }

    /// Sets the events read per page of the log (default 1,000; at least 1).
    pub fn page_size(mut self, events: usize) -> Self {
        self.page = events.max(1);
        self
    }

    /// Sets how soon a page that said events are held back is read again (default 10 ms).
    pub fn held_back_retry(mut self, wait: Duration) -> Self {
        self.held_back_retry = wait;
        self
    }

    /// The log position to start after: the cursor's, when it names an event of the log
    /// (a cursor of another feed does not, and starts from the beginning).
    async fn start_after(&self, after: Option<FeedCursor>) -> Result<LogPosition> {
        let Some(cursor) = after else { return Ok(LogPosition::START) };
        let (Ok(transaction), Ok(sequence)) = (u64::try_from(cursor.epoch), i64::try_from(cursor.sequence)) else {
            return Ok(LogPosition::START);
        };
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM \"{}\".events WHERE transaction_id = $1 AND sequence = $2)",
            self.store.config().schema
        );
        let found: bool = sqlx::query_scalar(&sql)
            .bind(cursor.epoch)
            .bind(sequence)
            .fetch_one(self.store.pool())
            .await
            .map_err(ProjectionError::database("checking a feed cursor against the log"))?;
        Ok(if found { LogPosition::new(transaction, cursor.sequence) } else { LogPosition::START })
    }
}

impl Feed for PgLogFeed {
    type Subscription = PgLogSubscription;

    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn partition_of(&self, stream: &StreamId) -> u32 {
        stream.partition(self.partitions)
    }

    async fn subscribe(&self, consumer: &str, partition: u32, after: Option<FeedCursor>) -> Result<PgLogSubscription> {
        if partition >= self.partitions {
            return Err(ProjectionError::Config("no such partition in the feed"));
        }
        let read = self.start_after(after).await?;
        tracing::debug!(consumer, partition, after = %read, "subscribed to the log");
        Ok(PgLogSubscription {
            watch: self.store.watch_log(),
            feed: self.clone(),
            partition,
            read,
            pending: VecDeque::new(),
        })
    }
}

/// A subscription to one partition of a [`PgLogFeed`].
#[derive(Debug)]
pub struct PgLogSubscription {
    feed: PgLogFeed,
    watch: LogWatch,
    partition: u32,
    /// The position of the last event read from the log (of any partition).
    read: LogPosition,
    /// Events of this partition read and not delivered yet, in log order.
    pending: VecDeque<RecordedEvent>,
}

impl PgLogSubscription {
    /// Up to `max` pending events, with their cursors.
    fn deliver(&mut self, max: usize) -> Result<Delivery> {
        let take = self.pending.len().min(max.max(1));
        let mut delivery = Delivery::default();
        for event in self.pending.drain(..take) {
            let epoch = i64::try_from(event.position.transaction_id)
                .map_err(|_| ProjectionError::Config("a transaction id beyond the cursor's range"))?;
            delivery.cursors.push(FeedCursor::new(epoch, event.position.sequence));
            delivery.messages.push(Incoming::Trusted(event));
        }
        Ok(delivery)
    }

    /// Reads the next page of the log, keeps this partition's events, and says how long
    /// to wait before the next read (zero when the page was full).
    async fn read_page(&mut self) -> Result<Duration> {
        self.watch.mark();
        let tail = match &self.feed.tenant {
            Some(view) => view.read_tail(self.read, self.feed.page).await?,
            None => self.feed.store.read_tail(self.read, self.feed.page).await?,
        };
        let full = tail.events.len() >= self.feed.page;
        for event in tail.events {
            self.read = event.position;
            if event.stream_id.partition(self.feed.partitions) == self.partition {
                self.pending.push_back(event);
            }
        }
        Ok(if full {
            Duration::ZERO
        } else if tail.held_back {
            self.feed.held_back_retry
        } else {
            // Bounded by the store's poll interval: a lost wake-up costs one interval.
            self.feed.store.config().poll_interval
        })
    }
}

impl Subscription for PgLogSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Delivery> {
        loop {
            if !self.pending.is_empty() {
                return self.deliver(max);
            }
            let wait = self.read_page().await?;
            if self.pending.is_empty() && !wait.is_zero() {
                self.watch.wait(wait).await;
            }
        }
    }
}

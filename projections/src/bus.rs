//! An in-process bus: the broker of the embedded mode and of fast tests. A pump tails an
//! event store's log (like the relay) and publishes into per-partition logs held in
//! memory; a subscription delivers a partition's messages after the cursor it is opened
//! at, as a JetStream consumer does. It can inject duplicate publishes and redeliveries on
//! purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tidemark::{EventStore, LogPosition, RecordedEvent, StreamId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{ProjectionError, Result};
use crate::feed::{Delivery, Feed, FeedCursor, Incoming, Subscription};

/// Faults the bus injects, to show that consumers are idempotent (the
/// `fault-injection` feature; without it the bus injects none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub))]
pub struct BusFaults {
    /// Publish every n-th event twice (a relay republishing after a crash).
    pub duplicate_every: Option<u64>,
    /// Deliver every n-th batch a second time (a subscription opened again at an older
    /// cursor, as after a runner's record was lost with its process).
    pub redeliver_every: Option<u64>,
}

impl BusFaults {
    /// No faults.
    #[cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub))]
    pub fn none() -> Self {
        Self::default()
    }
}

#[cfg(feature = "fault-injection")]
impl BusFaults {
    /// Publishes every `n`-th event twice.
    pub fn duplicate_every(mut self, n: u64) -> Self {
        self.duplicate_every = (n > 0).then_some(n);
        self
    }

    /// Delivers every `n`-th batch twice.
    pub fn redeliver_every(mut self, n: u64) -> Self {
        self.redeliver_every = (n > 0).then_some(n);
        self
    }
}

#[derive(Debug, Default)]
struct Partition {
    log: Mutex<Vec<Arc<RecordedEvent>>>,
    published: Notify,
}

#[derive(Debug)]
struct Inner {
    partitions: Vec<Partition>,
    faults: BusFaults,
    /// This bus's epoch: cursors recorded against another bus (an earlier process's)
    /// start from the beginning.
    epoch: i64,
    publishes: AtomicU64,
    batches: AtomicU64,
}

/// The in-process bus. Clones share the same partitions.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InProcessBus {
    /// A bus with `partitions` partitions (at least 1), partitioned like the relay's
    /// subjects (FNV-1a of the stream id).
    pub fn new(partitions: u32) -> Result<Self> {
        Self::build(partitions, BusFaults::none())
    }

    /// A bus that injects `faults` (the `fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    pub fn with_faults(partitions: u32, faults: BusFaults) -> Result<Self> {
        Self::build(partitions, faults)
    }

    fn build(partitions: u32, faults: BusFaults) -> Result<Self> {
        if partitions == 0 {
            return Err(ProjectionError::Config("a bus needs at least one partition"));
        }
        let partitions = (0..partitions).map(|_| Partition::default()).collect();
        let epoch = i64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default());
        let inner = Inner { partitions, faults, epoch, publishes: AtomicU64::new(0), batches: AtomicU64::new(0) };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Publishes one event to its partition (twice when a duplicate fault is due).
    pub fn publish(&self, event: RecordedEvent) {
        let n = self.inner.publishes.fetch_add(1, Ordering::Relaxed) + 1;
        let twice = self.inner.faults.duplicate_every.is_some_and(|every| n % every == 0);
        let partition = &self.inner.partitions[self.slot(&event.stream_id)];
        let event = Arc::new(event);
        {
            let mut log = lock(&partition.log);
            log.push(event.clone());
            if twice {
                log.push(event);
            }
        }
        partition.published.notify_waiters();
    }

    /// Messages published so far (duplicates included).
    pub fn published(&self) -> usize {
        self.inner.partitions.iter().map(|p| lock(&p.log).len()).sum()
    }

    /// Tails `store`'s log after `from` and publishes every event, in log order, until
    /// `shutdown`: the in-process counterpart of the relay. Returns the last position
    /// published.
    pub async fn pump<S: EventStore>(
        &self,
        store: &S,
        from: LogPosition,
        shutdown: CancellationToken,
    ) -> Result<LogPosition> {
        let mut after = from;
        while !shutdown.is_cancelled() {
            let events = store.read_log(after, 1_000).await?;
            if events.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    woken = store.wait_for_log(after, Duration::from_secs(1)) => { woken?; }
                }
                continue;
            }
            for event in events {
                after = event.position;
                self.publish(event);
            }
        }
        Ok(after)
    }

    fn slot(&self, stream: &StreamId) -> usize {
        let count = self.inner.partitions.len() as u32;
        stream.partition(count) as usize
    }
}

/// A subscription to one partition of the bus.
#[derive(Debug)]
pub struct BusSubscription {
    bus: InProcessBus,
    partition: usize,
    /// The index in the partition's log of the next message (its sequence less one).
    next: usize,
}

impl Feed for InProcessBus {
    type Subscription = BusSubscription;

    fn partitions(&self) -> u32 {
        self.inner.partitions.len() as u32
    }

    fn partition_of(&self, stream: &StreamId) -> u32 {
        self.slot(stream) as u32
    }

    async fn subscribe(&self, _consumer: &str, partition: u32, after: Option<FeedCursor>) -> Result<BusSubscription> {
        let index = partition as usize;
        if self.inner.partitions.get(index).is_none() {
            return Err(ProjectionError::Config("no such partition on the bus"));
        }
        let after = FeedCursor::sequence_in(after, self.inner.epoch).unwrap_or(0);
        let next = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(BusSubscription { bus: self.clone(), partition: index, next })
    }
}

impl Subscription for BusSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Delivery> {
        let partition = &self.bus.inner.partitions[self.partition];
        loop {
            let published = partition.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            {
                let log = lock(&partition.log);
                if log.len() > self.next {
                    let start = self.next;
                    let end = log.len().min(start + max.max(1));
                    let epoch = self.bus.inner.epoch;
                    let delivery = Delivery {
                        messages: log[start..end].iter().map(|e| Incoming::Trusted((**e).clone())).collect(),
                        cursors: (start..end).map(|i| FeedCursor::new(epoch, i as u64 + 1)).collect(),
                    };
                    let n = self.bus.inner.batches.fetch_add(1, Ordering::Relaxed) + 1;
                    let again = self.bus.inner.faults.redeliver_every.is_some_and(|every| n % every == 0);
                    // A batch due to come again is not passed: the next call starts at it.
                    self.next = if again { start } else { end };
                    return Ok(delivery);
                }
            }
            published.await;
        }
    }
}

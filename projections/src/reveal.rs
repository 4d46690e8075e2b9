//! A feed decorator that reveals the personal fields of delivered events before the
//! runner takes them in.

use std::sync::Arc;

use tidemark::{reveal_events, PersonalData, PersonalKeys, RecordedEvent, StreamId};

use crate::error::Result;
use crate::feed::{Delivery, Feed, FeedCursor, Incoming, Subscription};

/// Wraps a [`Feed`]: every full event it delivers ([`Incoming::Untrusted`] and
/// [`Incoming::Trusted`]) has its personal fields revealed with their subjects' keys, or
/// replaced by the placeholder once the subject was forgotten, so projections decode plain
/// values while the broker only ever carries the stored, sealed payload. Pair it with a
/// runner whose store is a [`ShreddingStore`](tidemark::ShreddingStore) (the runner reads
/// references, gap repairs and rebuilds from the store).
///
/// A batch whose personal data cannot be revealed (a damaged sealed value, a subject with
/// no key, the key storage unreachable) fails as a whole: the subscription returns the
/// error, the runner opens a new one after its recorded cursor, and nothing is lost or
/// applied until the cause is fixed.
#[derive(Debug, Clone)]
pub struct RevealingFeed<F, K> {
    inner: F,
    data: Arc<PersonalData>,
    keys: K,
}

impl<F, K> RevealingFeed<F, K> {
    /// `inner`, revealing the fields `data` registers with keys from `keys`.
    pub fn new(inner: F, data: Arc<PersonalData>, keys: K) -> Self {
        Self { inner, data, keys }
    }
}

impl<F, K> Feed for RevealingFeed<F, K>
where
    F: Feed,
    K: PersonalKeys + Clone + 'static,
{
    type Subscription = RevealingSubscription<F::Subscription, K>;

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }

    fn partition_of(&self, stream: &StreamId) -> u32 {
        self.inner.partition_of(stream)
    }

    async fn subscribe(&self, consumer: &str, partition: u32, after: Option<FeedCursor>) -> Result<Self::Subscription> {
        let inner = self.inner.subscribe(consumer, partition, after).await?;
        Ok(RevealingSubscription { inner, data: self.data.clone(), keys: self.keys.clone() })
    }
}

/// A subscription of a [`RevealingFeed`].
#[derive(Debug)]
pub struct RevealingSubscription<S, K> {
    inner: S,
    data: Arc<PersonalData>,
    keys: K,
}

async fn reveal<K: PersonalKeys>(data: &PersonalData, keys: &K, mut delivery: Delivery) -> Result<Delivery> {
    let mut events: Vec<&mut RecordedEvent> = delivery
        .messages
        .iter_mut()
        .filter_map(|m| match m {
            Incoming::Untrusted(e) | Incoming::Trusted(e) => Some(e),
            _ => None,
        })
        .collect();
    reveal_events(data, keys, &mut events).await.map_err(tidemark::Error::from)?;
    Ok(delivery)
}

impl<S: Subscription, K: PersonalKeys + 'static> Subscription for RevealingSubscription<S, K> {
    async fn next_batch(&mut self, max: usize) -> Result<Delivery> {
        let delivery = self.inner.next_batch(max).await?;
        reveal(&self.data, &self.keys, delivery).await
    }

    async fn next_batch_while<W>(&mut self, max: usize, busy: W) -> Option<Result<Delivery>>
    where
        W: std::future::Future<Output = ()> + Send,
    {
        match self.inner.next_batch_while(max, busy).await? {
            Ok(delivery) => Some(reveal(&self.data, &self.keys, delivery).await),
            Err(e) => Some(Err(e)),
        }
    }

    async fn committed(&mut self, through: FeedCursor) {
        self.inner.committed(through).await;
    }
}

//! The consumers' feed on PostgreSQL: JetStream (filled by the relay) or the store's log
//! read directly (no relay, no NATS), chosen by [`FeedChoice`]. One type for both, so that
//! every command and test builds the same runners whichever is chosen.

use std::future::Future;

use tidemark::StreamId;
use tidemark_nats::{JetStreamFeed, JetStreamSubscription};
use tidemark_projections::{Delivery, Feed, FeedCursor, Result, Subscription};
use tidemark_projections_postgres::{PgLogFeed, PgLogSubscription};

/// Where the consumers of a PostgreSQL deployment read their events from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FeedChoice {
    /// A JetStream stream, which a relay fills from the store's log (the default).
    #[default]
    Jetstream,
    /// The store's log itself: no relay and no NATS; every consumer partition reads the
    /// whole log and keeps its own events.
    Postgres,
}

impl FeedChoice {
    /// Whether this feed needs NATS (and a relay).
    pub fn needs_nats(self) -> bool {
        self == Self::Jetstream
    }

    /// How the mode is named in the app's messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Jetstream => "PostgreSQL + JetStream",
            Self::Postgres => "PostgreSQL only (no NATS)",
        }
    }
}

/// The feed of a PostgreSQL deployment's consumers.
#[derive(Debug, Clone)]
pub enum OrdersFeed {
    /// From JetStream.
    JetStream(Box<JetStreamFeed>),
    /// From the store's log.
    Postgres(PgLogFeed),
}

/// A subscription of an [`OrdersFeed`].
#[derive(Debug)]
pub enum OrdersSubscription {
    /// From JetStream.
    JetStream(Box<JetStreamSubscription>),
    /// From the store's log.
    Postgres(PgLogSubscription),
}

impl Feed for OrdersFeed {
    type Subscription = OrdersSubscription;

    fn partitions(&self) -> u32 {
        match self {
            Self::JetStream(feed) => feed.partitions(),
            Self::Postgres(feed) => feed.partitions(),
        }
    }

    fn partition_of(&self, stream: &StreamId) -> u32 {
        match self {
            Self::JetStream(feed) => feed.partition_of(stream),
            Self::Postgres(feed) => feed.partition_of(stream),
        }
    }

    async fn subscribe(&self, consumer: &str, partition: u32, after: Option<FeedCursor>) -> Result<OrdersSubscription> {
        Ok(match self {
            Self::JetStream(feed) => {
                OrdersSubscription::JetStream(Box::new(feed.subscribe(consumer, partition, after).await?))
            }
            Self::Postgres(feed) => OrdersSubscription::Postgres(feed.subscribe(consumer, partition, after).await?),
        })
    }
}

impl Subscription for OrdersSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Delivery> {
        match self {
            Self::JetStream(subscription) => subscription.next_batch(max).await,
            Self::Postgres(subscription) => subscription.next_batch(max).await,
        }
    }

    async fn next_batch_while<W>(&mut self, max: usize, busy: W) -> Option<Result<Delivery>>
    where
        W: Future<Output = ()> + Send,
    {
        match self {
            Self::JetStream(subscription) => subscription.next_batch_while(max, busy).await,
            Self::Postgres(subscription) => subscription.next_batch_while(max, busy).await,
        }
    }

    async fn committed(&mut self, through: FeedCursor) {
        match self {
            Self::JetStream(subscription) => subscription.committed(through).await,
            Self::Postgres(subscription) => subscription.committed(through).await,
        }
    }
}

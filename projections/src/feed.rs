//! Where a runner's events come from: a durable subscription per projection partition.
//! Implemented by [`JetStreamFeed`](crate::JetStreamFeed) and
//! [`InProcessBus`](crate::InProcessBus); the runner's code path is the same for both.

use std::future::Future;

use tidemark::{EventId, RecordedEvent, StreamId, StreamVersion};

use crate::error::Result;

/// One delivered message, as the runner sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Incoming {
    /// A full event.
    Event(RecordedEvent),
    /// A reference to an event (a thin notification, or a message whose payload could not
    /// be read): the runner reads the event itself from the store.
    Reference {
        /// The event's id.
        event_id: EventId,
        /// Its stream.
        stream_id: StreamId,
        /// Its version in the stream.
        stream_version: StreamVersion,
    },
    /// A copy of an event in an older schema version, published for older consumers
    /// (the relay's dual publishing): the runner takes the event itself in and passes the
    /// copy over.
    Copy {
        /// The id of the event copied.
        event_id: EventId,
    },
    /// A message that is not a tidemark event (headers missing or invalid). It is logged,
    /// counted and acknowledged: it carries nothing the store does not hold.
    Rogue {
        /// Why it was rejected.
        reason: String,
    },
}

/// A source of durable, partitioned subscriptions.
pub trait Feed: Send + Sync + 'static {
    /// A subscription to one partition.
    type Subscription: Subscription;

    /// The number of partitions.
    fn partitions(&self) -> u32;

    /// The partition holding the events of `stream`.
    fn partition_of(&self, stream: &StreamId) -> u32;

    /// Opens (or resumes) the durable subscription `consumer` to `partition`: it starts
    /// after the last acknowledged message of an earlier subscription with the same name.
    fn subscribe(&self, consumer: &str, partition: u32) -> impl Future<Output = Result<Self::Subscription>> + Send;
}

/// A durable subscription to one partition, delivering in publish order; messages not
/// acknowledged come again.
pub trait Subscription: Send + 'static {
    /// What acknowledging a batch needs.
    type Receipt: Send;

    /// Waits for at least one message and returns up to `max` of them.
    fn next_batch(&mut self, max: usize) -> impl Future<Output = Result<(Vec<Incoming>, Self::Receipt)>> + Send;

    /// Acknowledges a batch, after its changes are committed.
    fn ack(&mut self, receipt: Self::Receipt) -> impl Future<Output = Result<()>> + Send;
}

//! Where a runner's events come from: a durable subscription per projection partition.
//! Implemented by [`JetStreamFeed`](crate::JetStreamFeed) and
//! [`InProcessBus`](crate::InProcessBus); the runner's code path is the same for both.

use std::future::Future;

use tidemark::{EventId, RecordedEvent, StreamId, StreamVersion};

use crate::error::Result;
use crate::read_models::RogueMessage;

/// One delivered message, as the runner sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Incoming {
    /// A full event, as the broker delivered it: the runner checks its identity against
    /// the store before taking it in.
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
    /// An event read from the store itself (the in-process bus, a rebuild), or delivered
    /// with a signature made with the store's key (see
    /// [`JetStreamFeed::with_message_key`](crate::JetStreamFeed::with_message_key)): taken
    /// as it is, without checking it against the store.
    Stored(RecordedEvent),
    /// A message that is not an event of the store, found so by the feed (headers missing
    /// or invalid, a stream of another partition, a subject that disagrees with the
    /// headers, a payload that is not JSON). The runner parks it as a
    /// [`RogueMessage`](crate::RogueMessage) and acknowledges it; it never touches a
    /// stream's progress.
    Rogue {
        /// The record to park.
        message: Box<RogueMessage>,
        /// Whether the event the message names (its claimed stream, version and id), if
        /// the store holds exactly that event, is read from the store and taken in: a
        /// message published under a real event's id makes JetStream drop the real one as a
        /// duplicate, and that event must not be lost with it.
        recover: bool,
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

    /// Takes in up to `max` messages while `busy` has not finished (the runner applies the
    /// batch before), and returns what it has when it finishes: `None` when that is
    /// nothing. A message taken out of the feed must be returned, not dropped. The default
    /// takes nothing, so the runner takes each batch only after the one before it.
    fn next_batch_while<W>(
        &mut self,
        max: usize,
        busy: W,
    ) -> impl Future<Output = Option<Result<(Vec<Incoming>, Self::Receipt)>>> + Send
    where
        W: Future<Output = ()> + Send,
    {
        let _ = (max, busy);
        async { None }
    }

    /// Acknowledges a batch, after its changes are committed.
    fn ack(&mut self, receipt: Self::Receipt) -> impl Future<Output = Result<()>> + Send;
}

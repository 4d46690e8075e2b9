//! Where a runner's events come from: a subscription per projection partition, opened
//! right after the cursor the read model recorded with its last committed batch.
//! Implemented by [`JetStreamFeed`](crate::JetStreamFeed) and
//! [`InProcessBus`](crate::InProcessBus), and by `PgLogFeed` of
//! `tidemark-projections-postgres`, which reads the store's log directly; the runner's
//! code path is the same for all three.

use std::future::Future;

use tidemark::{EventId, RecordedEvent, StreamId, StreamVersion};

use crate::error::Result;
use crate::letters::RogueMessage;

/// One delivered message, as the runner sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Incoming {
    /// A full event, as the broker delivered it: the runner checks its identity against
    /// the store before taking it in.
    Untrusted(RecordedEvent),
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
    Trusted(RecordedEvent),
    /// A message that is not an event of the store, found so by the feed (headers missing
    /// or invalid, a stream of another partition, a subject that disagrees with the
    /// headers, a payload that is not JSON). The runner parks it as a
    /// [`RogueMessage`](crate::RogueMessage) with its batch; it never touches a
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

/// Where a partition's feed stands: the sequence of one message in the feed, within one
/// epoch of it. The runner records the cursor of each batch it commits in the same
/// transaction as the batch, and opens every subscription right after the recorded cursor:
/// the read model's database, not the broker, says what has been applied.
///
/// An epoch names one incarnation of the feed's log (for JetStream, the stream's creation
/// time): a cursor of another epoch says nothing about this one, and a subscription given
/// one starts from the beginning.
///
/// For the PostgreSQL feed (`PgLogFeed`), which has no log of its own, the cursor is the
/// event's log position: the epoch is the id of the transaction that wrote the event and
/// the sequence its global sequence. One epoch is then one transaction, whose events are
/// ordered by sequence, so "forward only within an epoch" is exact, and a cursor of a new
/// epoch is a later transaction (partitions are held by one runner at a time). A cursor
/// that names no event of the log (another feed's) starts from the beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedCursor {
    /// The incarnation of the feed's log the sequence belongs to (for the PostgreSQL feed,
    /// the transaction id of the event).
    pub epoch: i64,
    /// The message's sequence in the feed's log (for JetStream, the stream sequence; for
    /// the PostgreSQL feed, the event's global sequence).
    pub sequence: u64,
}

impl FeedCursor {
    /// The cursor of message `sequence` in `epoch`.
    pub fn new(epoch: i64, sequence: u64) -> Self {
        Self { epoch, sequence }
    }

    /// The sequence to start after when subscribing in `epoch`: this cursor's sequence when
    /// it belongs to that epoch, otherwise none (start from the beginning).
    pub fn sequence_in(cursor: Option<Self>, epoch: i64) -> Option<u64> {
        cursor.filter(|c| c.epoch == epoch).map(|c| c.sequence)
    }
}

/// Messages delivered together, in feed order, each with its cursor.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The messages.
    pub messages: Vec<Incoming>,
    /// The cursor of each message (as many as `messages`).
    pub cursors: Vec<FeedCursor>,
}

impl Delivery {
    /// An empty delivery with room for `messages` messages.
    pub fn with_capacity(messages: usize) -> Self {
        Self { messages: Vec::with_capacity(messages), cursors: Vec::with_capacity(messages) }
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether nothing was delivered.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The cursor of the last message.
    pub fn last_cursor(&self) -> Option<FeedCursor> {
        self.cursors.last().copied()
    }
}

/// A source of partitioned subscriptions that start where the runner says.
pub trait Feed: Send + Sync + 'static {
    /// A subscription to one partition.
    type Subscription: Subscription;

    /// The number of partitions.
    fn partitions(&self) -> u32;

    /// The partition holding the events of `stream`.
    fn partition_of(&self, stream: &StreamId) -> u32;

    /// Opens a subscription to `partition` for the projection consumer `consumer`,
    /// delivering every message after `after` in feed order (every message, when `after`
    /// is `None` or of another epoch). Nothing is acknowledged: a message a dead runner
    /// took in and did not commit is delivered again to the next subscription opened
    /// after the recorded cursor, at once.
    fn subscribe(
        &self,
        consumer: &str,
        partition: u32,
        after: Option<FeedCursor>,
    ) -> impl Future<Output = Result<Self::Subscription>> + Send;
}

/// A subscription to one partition, delivering in feed order, without a gap: a
/// subscription that cannot deliver the next message fails (and the runner opens another
/// one after its recorded cursor).
pub trait Subscription: Send + 'static {
    /// Waits for at least one message and returns up to `max` of them.
    fn next_batch(&mut self, max: usize) -> impl Future<Output = Result<Delivery>> + Send;

    /// Takes in up to `max` messages while `busy` has not finished (the runner applies the
    /// batch before), and returns what it has when it finishes: `None` when that is
    /// nothing. A message taken out of the feed must be returned, not dropped. The default
    /// takes nothing, so the runner takes each batch only after the one before it.
    fn next_batch_while<W>(&mut self, max: usize, busy: W) -> impl Future<Output = Option<Result<Delivery>>> + Send
    where
        W: Future<Output = ()> + Send,
    {
        let _ = (max, busy);
        async { None }
    }

    /// Told after a batch has committed, up to and including `through`. Nothing depends on
    /// it (the committed cursor is in the read model's database); a feed may use it as a
    /// hint. By default it does nothing.
    fn committed(&mut self, through: FeedCursor) -> impl Future<Output = ()> + Send {
        let _ = through;
        async {}
    }
}

//! A feed that delivers exactly the batches a test sends it, on one partition, and
//! reports each commit: the order of delivery is the test's, not a broker's.

use std::sync::{Arc, Mutex};

use tidemark_projections::{Delivery, Feed, FeedCursor, Incoming, ProjectionError, Subscription};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

type Batches = Arc<Mutex<Option<UnboundedReceiver<Vec<Incoming>>>>>;

/// The feed, for one subscriber.
#[derive(Clone)]
pub(crate) struct Scripted {
    batches: Batches,
    acks: UnboundedSender<usize>,
}

/// The test's end: it sends batches and waits for their commits.
pub(crate) struct Script {
    send: UnboundedSender<Vec<Incoming>>,
    acked: UnboundedReceiver<usize>,
}

pub(crate) struct ScriptedSubscription {
    batches: UnboundedReceiver<Vec<Incoming>>,
    acks: UnboundedSender<usize>,
    /// Batches delivered so far.
    delivered: usize,
    /// Messages delivered so far: the last one's sequence.
    sequence: u64,
    /// The last sequence of each batch delivered, with the batch's number.
    ends: Vec<(u64, usize)>,
}

impl Scripted {
    pub(crate) fn new() -> (Self, Script) {
        let (send, batches) = unbounded_channel();
        let (acks, acked) = unbounded_channel();
        (Self { batches: Arc::new(Mutex::new(Some(batches))), acks }, Script { send, acked })
    }
}

impl Script {
    /// Delivers `batch` and waits until it is committed; returns the batch's number
    /// (from 1).
    pub(crate) async fn deliver(&mut self, batch: Vec<Incoming>) -> usize {
        self.send.send(batch).expect("feed open");
        let receipt = tokio::time::timeout(super::DEADLINE, self.acked.recv()).await.expect("committed in time");
        receipt.expect("the runner still runs")
    }
}

impl Feed for Scripted {
    type Subscription = ScriptedSubscription;

    fn partitions(&self) -> u32 {
        1
    }

    fn partition_of(&self, _stream: &tidemark::StreamId) -> u32 {
        0
    }

    async fn subscribe(
        &self,
        _consumer: &str,
        _partition: u32,
        _after: Option<FeedCursor>,
    ) -> tidemark_projections::Result<ScriptedSubscription> {
        let taken = self.batches.lock().expect("lock").take();
        let batches = taken.ok_or(ProjectionError::Config("the scripted feed has one subscriber"))?;
        let acks = self.acks.clone();
        Ok(ScriptedSubscription { batches, acks, delivered: 0, sequence: 0, ends: Vec::new() })
    }
}

impl Subscription for ScriptedSubscription {
    async fn next_batch(&mut self, _max: usize) -> tidemark_projections::Result<Delivery> {
        match self.batches.recv().await {
            Some(messages) => {
                self.delivered += 1;
                let first = self.sequence + 1;
                self.sequence += messages.len() as u64;
                self.ends.push((self.sequence, self.delivered));
                let cursors = (first..=self.sequence).map(|s| FeedCursor::new(0, s)).collect();
                Ok(Delivery { messages, cursors })
            }
            None => std::future::pending().await,
        }
    }

    async fn committed(&mut self, through: FeedCursor) {
        for (_, batch) in self.ends.iter().filter(|(end, _)| *end <= through.sequence) {
            let _ = self.acks.send(*batch);
        }
        self.ends.retain(|(end, _)| *end > through.sequence);
    }
}

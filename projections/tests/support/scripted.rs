//! A feed that delivers exactly the batches a test sends it, on one partition, and
//! reports each acknowledgement: the order of delivery is the test's, not a broker's.

use std::sync::{Arc, Mutex};

use tidemark_projections::{Feed, Incoming, ProjectionError, Subscription};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

type Batches = Arc<Mutex<Option<UnboundedReceiver<Vec<Incoming>>>>>;

/// The feed, for one subscriber.
#[derive(Clone)]
pub struct Scripted {
    batches: Batches,
    acks: UnboundedSender<usize>,
}

/// The test's end: it sends batches and waits for their acknowledgements.
pub struct Script {
    send: UnboundedSender<Vec<Incoming>>,
    acked: UnboundedReceiver<usize>,
}

pub struct ScriptedSubscription {
    batches: UnboundedReceiver<Vec<Incoming>>,
    acks: UnboundedSender<usize>,
    delivered: usize,
}

impl Scripted {
    pub fn new() -> (Self, Script) {
        let (send, batches) = unbounded_channel();
        let (acks, acked) = unbounded_channel();
        (Self { batches: Arc::new(Mutex::new(Some(batches))), acks }, Script { send, acked })
    }
}

impl Script {
    /// Delivers `batch` and waits until it is acknowledged; returns its receipt (the
    /// batch's number, from 1).
    pub async fn deliver(&mut self, batch: Vec<Incoming>) -> usize {
        self.send.send(batch).expect("feed open");
        let receipt = tokio::time::timeout(super::DEADLINE, self.acked.recv()).await.expect("acknowledged in time");
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

    async fn subscribe(&self, _consumer: &str, _partition: u32) -> tidemark_projections::Result<ScriptedSubscription> {
        let taken = self.batches.lock().expect("lock").take();
        let batches = taken.ok_or(ProjectionError::Config("the scripted feed has one subscriber"))?;
        Ok(ScriptedSubscription { batches, acks: self.acks.clone(), delivered: 0 })
    }
}

impl Subscription for ScriptedSubscription {
    type Receipt = usize;

    async fn next_batch(&mut self, _max: usize) -> tidemark_projections::Result<(Vec<Incoming>, usize)> {
        match self.batches.recv().await {
            Some(batch) => {
                self.delivered += 1;
                Ok((batch, self.delivered))
            }
            None => std::future::pending().await,
        }
    }

    async fn ack(&mut self, receipt: usize) -> tidemark_projections::Result<()> {
        let _ = self.acks.send(receipt);
        Ok(())
    }
}

//! The warehouse's queue (`fulfilment-queue`, key: order id): fulfilments requested and
//! not dispatched yet.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark::{Envelope, EventCodec};
use tidemark_projections::{ApplyError, DocumentTx, Projection, ReadModels};
use uuid::Uuid;

use super::happened_at;
use crate::domain::{fulfilment_codec, FulfilmentEvent, FulfilmentLine};

/// The projection's name and its collection.
pub const FULFILMENT_QUEUE: &str = "fulfilment-queue";

/// A fulfilment waiting to be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedFulfilment {
    /// The order to fulfil.
    pub order_id: Uuid,
    /// What to pick and pack.
    pub lines: Vec<FulfilmentLine>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
}

/// Keeps [`FULFILMENT_QUEUE`].
#[derive(Debug)]
pub struct FulfilmentQueueProjection {
    codec: EventCodec<FulfilmentEvent>,
}

impl FulfilmentQueueProjection {
    /// The projection.
    pub fn new() -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: fulfilment_codec()? })
    }
}

impl<R> Projection<R> for FulfilmentQueueProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = FulfilmentEvent;

    fn name(&self) -> &str {
        FULFILMENT_QUEUE
    }

    fn codec(&self) -> &EventCodec<FulfilmentEvent> {
        &self.codec
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<FulfilmentEvent>) -> Result<(), ApplyError> {
        match &event.event {
            FulfilmentEvent::Requested(e) => {
                let queued =
                    QueuedFulfilment { order_id: e.order_id, lines: e.lines.clone(), requested_at: happened_at(event) };
                tx.put_as(FULFILMENT_QUEUE, &e.order_id.to_string(), &queued).await
            }
            FulfilmentEvent::Dispatched(_) => {
                let order_id = crate::domain::fulfilment_order_id(&event.stream_id)
                    .ok_or_else(|| format!("a fulfilment event in stream {}", event.stream_id))?;
                tx.delete(FULFILMENT_QUEUE, &order_id.to_string()).await
            }
        }
    }
}

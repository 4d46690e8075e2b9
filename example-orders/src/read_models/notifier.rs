//! Change notices: every order event is pushed as `order_changed` to the sockets of the
//! order's customer. A consumer of the feed like the projections, so changes made by any
//! instance or by the process manager are noticed; it keeps only each open order's
//! customer (`notice-owners`). Notices may repeat after a redelivery (at least once).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark::{DomainEvent, Envelope, EventCodec};
use tidemark_projections::{ApplyError, DocumentTx, Projection, ReadModels};

use super::{happened_at, order_id};
use crate::app::{Hub, Notice};
use crate::domain::{codec, OrderEvent};

/// The consumer's name.
pub const NOTIFIER: &str = "order-notices";
const OWNERS: &str = "notice-owners";

#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    customer: String,
}

/// Pushes `order_changed` notices to the hub.
#[derive(Debug)]
pub struct NotifierProjection {
    codec: EventCodec<OrderEvent>,
    hub: Arc<Hub>,
}

impl NotifierProjection {
    /// A notifier pushing to `hub`.
    pub fn new(hub: Arc<Hub>) -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: codec()?, hub })
    }
}

impl<R> Projection<R> for NotifierProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = OrderEvent;

    fn name(&self) -> &str {
        NOTIFIER
    }

    fn codec(&self) -> &EventCodec<OrderEvent> {
        &self.codec
    }

    /// Notices leave at once: a batch must be checked before it is applied.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<OrderEvent>) -> Result<(), ApplyError> {
        let id = order_id(event)?;
        let key = id.to_string();
        let customer = match &event.event {
            OrderEvent::Placed(placed) => placed.customer.clone(),
            _ => match tx.get_as::<Owner>(OWNERS, &key).await? {
                Some(owner) => owner.customer,
                None => return Ok(()),
            },
        };
        let notice = Notice::OrderChanged {
            order_id: id,
            version: event.stream_version.0,
            event: event.event.event_type(),
            at: happened_at(event),
        };
        self.hub.send(&customer, &notice);
        match &event.event {
            OrderEvent::Shipped(_) | OrderEvent::Cancelled(_) => tx.delete(OWNERS, &key).await,
            OrderEvent::Placed(_) => tx.put_as(OWNERS, &key, &Owner { customer }).await,
            _ => Ok(()),
        }
    }
}

//! The order process manager's decisions, as pure functions.
//!
//! `OrderPaid` → request the order's fulfilment; `FulfilmentDispatched` → ship the
//! order with the tracking number. Each follow-up command carries an id derived from
//! the event that caused it, so reprocessing a redelivered event issues "the same"
//! command again, which the store records only once.

use tidemark::{CommandId, StreamId};
use uuid::Uuid;

use super::commands::OrderCommand;
use super::events::OrderPaid;
use super::fulfilment::{FulfilmentCommand, FulfilmentDispatched, FulfilmentLine};
use super::order::Order;
use super::status::OrderStatus;
use super::streams::{fulfilment_stream, order_stream};

/// The namespace of the command ids this process manager derives. Never change it:
/// reprocessing old events must give the ids they gave before.
pub const PROCESS_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_7a0e_3b4f_4c2a_9e61_0f3d_8b2a_6c14);

/// A command the process manager wants handled: where, under which id, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp<C> {
    /// The stream the command is for.
    pub stream: StreamId,
    /// Its deterministic id: handling it twice records it once.
    pub command_id: CommandId,
    /// The command.
    pub command: C,
}

/// After an order is paid: request its fulfilment with the order's lines.
///
/// `order` is the order's state (at or after the payment). Returns `None` when there is
/// nothing to fulfil: the order was cancelled meanwhile, or it holds no lines.
pub fn after_paid(order_id: Uuid, order: &Order, paid: &OrderPaid) -> Option<FollowUp<FulfilmentCommand>> {
    if order.status() == OrderStatus::Cancelled || order.lines().is_empty() {
        return None;
    }
    let lines = order.lines().iter().map(|l| FulfilmentLine { product: l.product.clone(), quantity: l.quantity });
    Some(FollowUp {
        stream: fulfilment_stream(order_id),
        command_id: CommandId::derived(
            PROCESS_NAMESPACE,
            &format!("request-fulfilment/{order_id}/{}", paid.payment_id),
        ),
        command: FulfilmentCommand::Request { order_id, lines: lines.collect() },
    })
}

/// After an order's parcel is dispatched: ship the order with the tracking number.
pub fn after_dispatched(order_id: Uuid, dispatched: &FulfilmentDispatched) -> FollowUp<OrderCommand> {
    let name = format!("ship-order/{order_id}/{}", dispatched.tracking);
    FollowUp {
        stream: order_stream(order_id),
        command_id: CommandId::derived(PROCESS_NAMESPACE, &name),
        command: OrderCommand::Ship { tracking: dispatched.tracking.clone() },
    }
}

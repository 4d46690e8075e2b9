//! Stream ids of orders and fulfilments, from order ids.

use tidemark::{Aggregate, StreamId};
use uuid::Uuid;

use super::fulfilment::Fulfilment;
use super::order::Order;

/// The stream of an order: `order-<uuid>`, the UUID hyphenated and lower-case.
///
/// ```
/// use example_orders::domain::{order_id_of, order_stream};
/// let id = uuid::Uuid::nil();
/// assert_eq!(order_stream(id).as_str(), "order-00000000-0000-0000-0000-000000000000");
/// assert_eq!(order_id_of(&order_stream(id)), Some(id));
/// ```
pub fn order_stream(order_id: Uuid) -> StreamId {
    entity_stream(Order::CATEGORY, order_id)
}

/// The stream of an order's fulfilment: `fulfilment-<order uuid>` (one per order).
pub fn fulfilment_stream(order_id: Uuid) -> StreamId {
    entity_stream(Fulfilment::CATEGORY, order_id)
}

/// The order id of an order stream, or `None` for any other stream.
pub fn order_id_of(stream: &StreamId) -> Option<Uuid> {
    entity_id(Order::CATEGORY, stream)
}

/// The order id of a fulfilment stream, or `None` for any other stream.
pub fn fulfilment_order_id(stream: &StreamId) -> Option<Uuid> {
    entity_id(Fulfilment::CATEGORY, stream)
}

fn entity_stream(category: &str, id: Uuid) -> StreamId {
    // A category without '-' followed by '-' and a hyphenated UUID (36 bytes of hex
    // digits and '-') always satisfies the stream id rules.
    StreamId::for_entity(category, id.hyphenated()).expect("a category and a UUID make a valid stream id")
}

fn entity_id(category: &str, stream: &StreamId) -> Option<Uuid> {
    let id = stream.as_str().strip_prefix(category)?.strip_prefix('-')?;
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_round_trip_and_keep_categories_apart() {
        for id in [Uuid::nil(), Uuid::max(), Uuid::now_v7()] {
            assert_eq!(order_stream(id).category(), "order");
            assert_eq!(fulfilment_stream(id).category(), "fulfilment");
            assert_eq!(order_id_of(&order_stream(id)), Some(id));
            assert_eq!(fulfilment_order_id(&fulfilment_stream(id)), Some(id));
            assert_eq!(order_id_of(&fulfilment_stream(id)), None);
            assert_eq!(fulfilment_order_id(&order_stream(id)), None);
        }
        let odd = ["order", "order-", "order-42", "orders-00000000-0000-0000-0000-000000000000"];
        for stream in odd.iter().filter_map(|s| StreamId::new(*s).ok()) {
            assert_eq!(order_id_of(&stream), None, "{stream}");
        }
    }
}

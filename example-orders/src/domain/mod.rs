//! The order domain, free of I/O apart from the fixture import.
//!
//! - [`Order`]: an aggregate deciding on [`OrderCommand`]s and recording [`OrderEvent`]s;
//!   money in integer minor units, a validated [`Currency`].
//! - [`codec`]: decodes stored order events, upcasting the first release's `OrderPlaced` v1.
//! - [`Fulfilment`]: the warehouse's side; [`after_paid`] and [`after_dispatched`] are the
//!   process manager's pure decisions linking the two, with deterministic command ids.
//! - [`fixture_events`] and [`import_fixture`]: the first release's orders, committed in
//!   `fixtures/v1-orders.jsonl`, and their idempotent import into any event store.

mod commands;
mod currency;
mod decimal;
mod error;
mod events;
mod fixture;
mod fulfilment;
mod import;
mod line;
mod order;
mod personal;
mod process;
mod status;
mod streams;
mod upcast;

pub use commands::{
    OrderCommand, MAX_CUSTOMER_CHARS, MAX_DELIVERY_CHARS, MAX_LINES, MAX_REASON_CHARS, MAX_REFERENCE_CHARS,
};
pub use currency::Currency;
pub use decimal::{decimal_to_minor, MalformedPrice};
pub use error::OrderError;
pub use events::{
    Delivery, LineAdded, LineRemoved, OrderCancelled, OrderConfirmed, OrderEvent, OrderPaid, OrderPlaced, OrderShipped,
};
pub use fixture::{fixture_events, parse_fixture, FixtureError, FixtureEvent, RECORDED_AT_HEADER, V1_ORDERS};
pub use fulfilment::{
    Fulfilment, FulfilmentCommand, FulfilmentDispatched, FulfilmentError, FulfilmentEvent, FulfilmentLine,
    FulfilmentRequested,
};
pub use import::{import_events, import_fixture, ImportError};
pub use line::{lines_total, Line, MAX_PRODUCT_CHARS};
pub use order::Order;
pub use personal::personal_data;
pub use process::{after_dispatched, after_paid, FollowUp, PROCESS_NAMESPACE};
pub use status::OrderStatus;
pub use streams::{fulfilment_order_id, fulfilment_stream, order_id_of, order_stream};
pub use upcast::{codec, placed_v1_to_v2};

/// The codec for [`FulfilmentEvent`]s, which have never changed shape.
pub fn fulfilment_codec() -> Result<tidemark::EventCodec<FulfilmentEvent>, tidemark::RegistryError> {
    tidemark::EventCodec::without_upcasters()
}

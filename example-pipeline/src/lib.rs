//! Two services over NATS JetStream: `intake` appends orders and relays the store's log;
//! `shipping` consumes it and requests a shipment for every paid order. See README.md.

mod domain;
mod intake;
mod settings;
mod shipping;

pub use domain::{
    Order, OrderCommand, OrderError, OrderEvent, OrderPaid, OrderPlaced, Ship, Shipment, ShipmentError, ShipmentEvent,
    ShipmentRequested,
};
pub use intake::Intake;
pub use settings::Settings;
pub use shipping::{shipment_of, ShipPaidOrders, Shipping};

/// Why a service could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The order refused the command; nothing was written.
    #[error("refused: {0}")]
    Refused(OrderError),
    /// The command could not be carried out (the store failed, or kept conflicting).
    #[error(transparent)]
    Command(Box<tidemark::CommandError<OrderError>>),
    /// Connecting to or migrating PostgreSQL failed.
    #[error(transparent)]
    Setup(#[from] tidemark_postgres::SetupError),
    /// Connecting to NATS failed.
    #[error("connecting to NATS: {0}")]
    Nats(String),
    /// The relay stopped on an error retrying cannot fix.
    #[error(transparent)]
    Relay(#[from] tidemark_nats::RelayError),
    /// The JetStream stream could not be created or updated.
    #[error(transparent)]
    Stream(#[from] tidemark_nats::StreamError),
    /// The store's message key could not be read.
    #[error(transparent)]
    Key(#[from] tidemark_nats::KeyError),
    /// The subjects' settings are invalid.
    #[error(transparent)]
    Subjects(#[from] tidemark_nats::SubjectError),
    /// The consumer failed, or did not catch up in time.
    #[error(transparent)]
    Projection(#[from] tidemark_projections::ProjectionError),
    /// The event types are declared twice (a bug in this crate).
    #[error(transparent)]
    Registry(#[from] tidemark::RegistryError),
    /// An id that is not a valid stream id.
    #[error(transparent)]
    InvalidId(#[from] tidemark::InvalidStreamId),
}

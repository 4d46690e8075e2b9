//! NATS: the shared server and private servers for kill/restart tests.

mod cluster;
mod server;
mod shared;

pub use cluster::NatsCluster;
pub use server::NatsServer;
pub use shared::nats_url;

pub(crate) use server::read_info;

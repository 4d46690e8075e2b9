//! NATS: the shared server and private servers for kill/restart tests.

mod cluster;
mod security;
mod server;
mod shared;
mod tls;

pub use cluster::NatsCluster;
pub use security::{NatsAuth, NatsSecurity};
pub use server::NatsServer;
pub use shared::nats_url;
pub use tls::TlsFiles;

pub(crate) use server::read_info;

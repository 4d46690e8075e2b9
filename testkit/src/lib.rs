//! Real PostgreSQL and NATS servers for tidemark's tests, isolated per test. No mocks.
//!
//! * [`postgres_url`] and [`nats_url`]: the servers the tests of a process share, found through
//!   `DATABASE_URL` / `NATS_URL`, the standard local ports, or started once as throwaway servers.
//! * [`TestSchema`] (a fresh schema per test) and [`TestDatabase`] (a fresh database per test) in
//!   the shared PostgreSQL server, dropped when the value is dropped.
//! * [`PgCluster`] and [`NatsServer`]: private throwaway servers that a test may stop, kill and
//!   restart without disturbing anyone else.
//! * [`arbitrary`]: proptest strategies for adversarial input (arbitrary JSON).
//! * [`unique_name`]: per-test JetStream stream names; [`free_port`]: an unused loopback port.
//!
//! Every function that waits does so against a bounded deadline; every failure to find or start
//! a server panics with a message that says what to install or set. See `DEVELOPERS.md` at the
//! repository root for how the tests find their servers.

pub mod arbitrary;
mod binaries;
mod child;
mod env;
mod install_hint;
mod names;
mod nats;
mod net;
mod os_user;
mod postgres;
mod process;
mod wait;
mod watchdog;

pub use child::Child;
pub use names::unique_name;
pub use nats::{nats_url, NatsAuth, NatsCluster, NatsSecurity, NatsServer, TlsFiles};
pub use net::free_port;
pub use postgres::{postgres_url, PgCluster, TestDatabase, TestSchema};
pub use wait::wait_until;

/// Reads the `INFO` greeting of the NATS server on `127.0.0.1:port`: the first line it sends to
/// every client, `INFO {json}`. Lets tests check a server is up without a NATS client library.
///
/// # Errors
///
/// The connection's I/O error, or [`std::io::ErrorKind::InvalidData`] when the first line is not
/// an `INFO` line.
pub async fn nats_info(port: u16) -> std::io::Result<String> {
    nats::read_info(port).await
}

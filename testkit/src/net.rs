//! Loopback ports: picking a free one and checking whether one accepts connections.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding `127.0.0.1:0`, reading the port the kernel chose and closing the
/// listener again, so another process may take it before the caller binds it: the server starters
/// in this crate retry with a fresh port when that happens.
///
/// # Panics
///
/// Panics when no loopback socket can be bound at all (no loopback interface).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("tidemark-testkit: cannot bind 127.0.0.1:0 to find a free port: {e}"));
    match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => panic!("tidemark-testkit: cannot read the address of a bound socket: {e}"),
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port` within `timeout`.
pub(crate) async fn accepts_tcp(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)))
}

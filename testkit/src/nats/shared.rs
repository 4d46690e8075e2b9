//! [`nats_url`]: the one nats-server all ordinary tests of a process share.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;

use super::server::NatsServer;
use crate::env::{force_throwaway, non_empty, NATS_URL};
use crate::install_hint::unavailable;
use crate::net::accepts_tcp;

/// The URL used when something listens on the standard port.
const LOCAL_URL: &str = "nats://127.0.0.1:4222";

/// The decision, made once per process: a URL, or the message every caller panics with.
static SHARED: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The throwaway server, when one had to be started; it lives until the process exits, when its
/// watchdog shuts it down and deletes its files.
static THROWAWAY: OnceLock<NatsServer> = OnceLock::new();

/// The URL of the nats-server (with JetStream) the tests of this process share.
///
/// In order: `NATS_URL` if set; else `nats://127.0.0.1:4222` if that port accepts connections;
/// else one throwaway server started for the whole process (see [`NatsServer`]). The choice is
/// made once and reused. Setting `TIDEMARK_TEST_FORCE_THROWAWAY=1` skips the first two.
///
/// Tests sharing a server keep apart by naming their streams with
/// [`unique_name`](crate::unique_name).
///
/// # Panics
///
/// Panics, saying what to install or set, when no server is configured, running, or startable.
pub async fn nats_url() -> String {
    match SHARED.get_or_init(resolve).await {
        Ok(url) => url.clone(),
        Err(message) => panic!("{message}"),
    }
}

async fn resolve() -> Result<String, String> {
    if !force_throwaway() {
        if let Some(url) = non_empty(NATS_URL) {
            return Ok(url);
        }
        if accepts_tcp(4222, Duration::from_secs(1)).await {
            return Ok(LOCAL_URL.to_owned());
        }
    }
    let server = NatsServer::try_start().await.map_err(|reason| unavailable("NATS", NATS_URL, 4222, &reason))?;
    let url = server.url();
    // `resolve` runs once per process, so the cell is empty here.
    let _ = THROWAWAY.set(server);
    Ok(url)
}

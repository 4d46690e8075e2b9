//! The one message a test shows when no server can be found or started.

use crate::env::{force_throwaway, FORCE_THROWAWAY};

/// Builds the panic message for a service that is neither configured, running nor startable.
pub(crate) fn unavailable(service: &str, env_var: &str, port: u16, reason: &str) -> String {
    let skipped = if force_throwaway() {
        format!("{FORCE_THROWAWAY} is set, so {env_var} and 127.0.0.1:{port} were not tried")
    } else {
        format!("{env_var} is not set, nothing accepts connections on 127.0.0.1:{port}")
    };
    format!(
        "tidemark-testkit: no {service} server for the tests.\n\
         {skipped}, and starting a throwaway server failed:\n{reason}\n\
         Fix one of these ways:\n\
         \x20 * run `bash scripts/test`, which installs and starts the shared services, or\n\
         \x20 * install the servers: `apt-get install -y postgresql nats-server`, or\n\
         \x20 * set {env_var} to a reachable server.\n\
         See DEVELOPERS.md."
    )
}

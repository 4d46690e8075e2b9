//! Why [`NatsConnect::connect`](crate::NatsConnect::connect) failed.

use std::path::PathBuf;

use async_nats::{ConnectError, ConnectErrorKind};

/// Why a NATS connection could not be made. Messages name servers with any password
/// replaced by `***`, and never hold a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsConnectError {
    /// No server URL was given.
    #[error("no NATS server URL given")]
    NoServers,
    /// A server URL cannot be parsed (or has a scheme other than nats, tls, ws, wss).
    #[error("invalid NATS server URL {url}: {source}")]
    InvalidServer {
        /// The URL, redacted.
        url: String,
        /// What the parser reported.
        #[source]
        source: std::io::Error,
    },
    /// The options contradict each other.
    #[error("invalid NATS connection options: {0}")]
    Conflict(&'static str),
    /// A file the options name cannot be read.
    #[error("cannot read the NATS {what} {path}: {source}")]
    File {
        /// Which file: `CA file`, `client certificate`, `client key`, `credentials file`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the connection's credentials, or requires credentials and got
    /// none. Retrying with the same options will not help.
    #[error("NATS server {servers} refused the credentials: {source}")]
    Unauthorized {
        /// The servers, redacted.
        servers: String,
        /// What async-nats reported.
        #[source]
        source: ConnectError,
    },
    /// TLS failed: the server's certificate is not trusted or does not match its address,
    /// the server does not speak TLS while TLS is required, or a client certificate is
    /// missing or refused.
    #[error("TLS with NATS server {servers} failed: {source}")]
    Tls {
        /// The servers, redacted.
        servers: String,
        /// What async-nats reported.
        #[source]
        source: ConnectError,
    },
    /// No server answered in time, or the connection broke. May succeed later.
    #[error("cannot reach NATS server {servers}: {source}")]
    Unreachable {
        /// The servers, redacted.
        servers: String,
        /// What async-nats reported.
        #[source]
        source: ConnectError,
    },
}

/// Whether a rustls error is somewhere in `error`'s chain of sources, looking inside
/// `std::io::Error`s too.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            if is_tls_failure(inner) {
                return true;
            }
        }
        next = error.source();
    }
    false
}

impl NatsConnectError {
    /// Sorts a failed connect by its kind.
    pub(crate) fn from_connect(servers: String, source: ConnectError) -> Self {
        match source.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                Self::Unauthorized { servers, source }
            }
            ConnectErrorKind::Tls => Self::Tls { servers, source },
            // async-nats reports a failed TLS handshake (an untrusted certificate, a
            // plaintext server) as I/O: recognise rustls' error inside it.
            ConnectErrorKind::Io if is_tls_failure(&source) => Self::Tls { servers, source },
            ConnectErrorKind::ServerParse => {
                let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, source);
                Self::InvalidServer { url: servers, source }
            }
            _ => Self::Unreachable { servers, source },
        }
    }

    /// Whether trying again later with the same options may succeed (the server was not
    /// reachable); credentials, TLS and option errors are not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

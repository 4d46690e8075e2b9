//! [`NatsConnect`]: how an application reaches NATS — servers, credentials, TLS — as plain
//! configuration, turned into an `async_nats::Client` by [`NatsConnect::connect`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};

use crate::connect_error::NatsConnectError;
use crate::redact::{redact_url, Secret};

/// How to connect to NATS: one or more servers, at most one way to authenticate, TLS.
///
/// Its `Debug` and `Display` never show a password, a token or the password of a URL
/// (`nats://user:pass@host` shows as `nats://user:***@host`).
///
/// ```no_run
/// use tidemark_nats::NatsConnect;
/// # async fn demo() -> Result<(), tidemark_nats::NatsConnectError> {
/// let client = NatsConnect::new("nats://10.0.0.1:4222, nats://10.0.0.2:4222")
///     .user_password("relay", std::env::var("NATS_PASSWORD").unwrap_or_default())
///     .ca_file("/etc/nats/ca.pem")
///     .require_tls(true)
///     .name("orders-relay")
///     .connect()
///     .await?;
/// # drop(client); Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct NatsConnect {
    /// Server URLs (`nats://host:port`, `tls://host:port`, or `host:port`), tried in order
    /// at the first connect, then all used for reconnects. Default: none (an error).
    pub servers: Vec<String>,
    /// The user of user/password authentication (default none).
    pub user: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
    /// A `.creds` file (user JWT and NKey seed) for decentralized auth (default none).
    pub credentials_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust, in addition to the system's (default none).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its private key, PEM, for servers that verify clients
    /// (default none).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Refuse to talk to a server without TLS (default false: TLS is used when the server
    /// asks for it or the URL's scheme is `tls`).
    pub require_tls: bool,
    /// The connection's name, shown by the server's monitoring (default none).
    pub name: Option<String>,
    /// Longest wait for one connection attempt, TCP and TLS and handshake (default 5 s).
    pub connection_timeout: Duration,
    /// Whether `connect` returns at once and the client keeps trying in the background
    /// when no server answers (default false: `connect` fails with a typed error).
    pub retry_on_initial_connect: bool,
}

impl NatsConnect {
    /// Options for `servers`: one URL or a comma-separated list (spaces around commas are
    /// ignored, empty entries skipped).
    pub fn new(servers: &str) -> Self {
        Self {
            servers: split_servers(servers),
            user: None,
            password: None,
            token: None,
            credentials_file: None,
            ca_file: None,
            client_cert: None,
            require_tls: false,
            name: None,
            connection_timeout: Duration::from_secs(5),
            retry_on_initial_connect: false,
        }
    }

    /// Authenticates as `user` with `password`.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self.password = Some(Secret::new(password.into()));
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token.into()));
        self
    }

    /// Authenticates with a `.creds` file.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Trusts the CA certificates in this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM) with its private key (PEM).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Requires TLS (or not).
    pub fn require_tls(mut self, required: bool) -> Self {
        self.require_tls = required;
        self
    }

    /// Names the connection.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the timeout of one connection attempt.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Returns from `connect` at once and keeps trying in the background.
    pub fn retry_on_initial_connect(mut self, retry: bool) -> Self {
        self.retry_on_initial_connect = retry;
        self
    }

    /// Whether a password is set (its value is never shown).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether a token is set (its value is never shown).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The servers as they may be shown: passwords in URLs replaced by `***`.
    pub fn servers_redacted(&self) -> String {
        self.servers.iter().map(|s| redact_url(s)).collect::<Vec<_>>().join(",")
    }

    /// Connects. Without `retry_on_initial_connect`, every server is tried once and a
    /// failure is returned as it is: refused credentials and TLS failures come back as soon
    /// as the server answers, unreachable servers after `connection_timeout` each.
    ///
    /// # Errors
    ///
    /// [`NatsConnectError`]: invalid options, an unreadable file, or the failed connection,
    /// by cause.
    pub async fn connect(&self) -> Result<async_nats::Client, NatsConnectError> {
        let servers = self.server_addrs()?;
        let options = self.options().await?;
        let shown = self.servers_redacted();
        options.connect(servers).await.map_err(|source| NatsConnectError::from_connect(shown, source))
    }

    fn server_addrs(&self) -> Result<Vec<ServerAddr>, NatsConnectError> {
        if self.servers.is_empty() {
            return Err(NatsConnectError::NoServers);
        }
        self.servers
            .iter()
            .map(|server| {
                ServerAddr::from_str(server)
                    .map_err(|source| NatsConnectError::InvalidServer { url: redact_url(server), source })
            })
            .collect()
    }

    /// The async-nats options these settings make.
    async fn options(&self) -> Result<ConnectOptions, NatsConnectError> {
        let methods =
            [self.user.is_some() || self.password.is_some(), self.token.is_some(), self.credentials_file.is_some()];
        if methods.iter().filter(|set| **set).count() > 1 {
            return Err(NatsConnectError::Conflict("set only one of user/password, token and credentials file"));
        }
        let mut options = ConnectOptions::new()
            .connection_timeout(self.connection_timeout)
            .require_tls(self.require_tls)
            .event_callback(|event| async move { log_event(&event) });
        if let Some(user) = &self.user {
            let password = self.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default();
            options = options.user_and_password(user.clone(), password);
        } else if self.password.is_some() {
            return Err(NatsConnectError::Conflict("a password needs a user"));
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_owned());
        }
        if let Some(path) = &self.credentials_file {
            options =
                options.credentials_file(path).await.map_err(|source| file_error("credentials file", path, source))?;
        }
        if let Some(path) = &self.ca_file {
            readable("CA file", path)?;
            options = options.add_root_certificates(path.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            readable("client certificate", cert)?;
            readable("client key", key)?;
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        if self.retry_on_initial_connect {
            options = options.retry_on_initial_connect();
        }
        Ok(options)
    }
}

/// Logs what the client reports after connecting: disconnections at warn, reconnections at
/// info, errors (such as refused credentials on a reconnect) at warn.
fn log_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Connected => tracing::info!("connected to NATS"),
        async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
        async_nats::Event::ClientError(error) => tracing::warn!(%error, "NATS client error"),
        async_nats::Event::ServerError(error) => tracing::warn!(%error, "NATS server error"),
        other => tracing::debug!(event = %other, "NATS client event"),
    }
}

fn readable(what: &'static str, path: &Path) -> Result<(), NatsConnectError> {
    std::fs::File::open(path).map(drop).map_err(|source| file_error(what, path, source))
}

fn file_error(what: &'static str, path: &Path, source: std::io::Error) -> NatsConnectError {
    NatsConnectError::File { what, path: path.to_owned(), source }
}

fn split_servers(servers: &str) -> Vec<String> {
    servers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl Default for NatsConnect {
    /// `nats://127.0.0.1:4222`, no credentials, no TLS.
    fn default() -> Self {
        Self::new("nats://127.0.0.1:4222")
    }
}

impl fmt::Debug for NatsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConnect")
            .field("servers", &self.servers_redacted())
            .field("user", &self.user)
            .field("password", &self.password)
            .field("token", &self.token)
            .field("credentials_file", &self.credentials_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("require_tls", &self.require_tls)
            .field("name", &self.name)
            .field("connection_timeout", &self.connection_timeout)
            .field("retry_on_initial_connect", &self.retry_on_initial_connect)
            .finish()
    }
}

impl fmt::Display for NatsConnect {
    /// `<servers>` then what authenticates and secures the connection, for start-up logs:
    /// `nats://10.0.0.1:4222 (user relay with password, TLS required, CA /etc/nats/ca.pem)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.servers_redacted())?;
        let mut parts = Vec::new();
        match (&self.user, &self.password) {
            (Some(user), Some(_)) => parts.push(format!("user {user} with password")),
            (Some(user), None) => parts.push(format!("user {user}")),
            _ => {}
        }
        if self.token.is_some() {
            parts.push("token".to_owned());
        }
        if let Some(path) = &self.credentials_file {
            parts.push(format!("credentials {}", path.display()));
        }
        if self.require_tls {
            parts.push("TLS required".to_owned());
        }
        if let Some(path) = &self.ca_file {
            parts.push(format!("CA {}", path.display()));
        }
        if let Some((cert, _)) = &self.client_cert {
            parts.push(format!("client certificate {}", cert.display()));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

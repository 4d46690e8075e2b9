//! `--nats-*`: how every process of the PostgreSQL mode connects to NATS.

use std::path::PathBuf;

use clap::Args;
use tidemark_nats::NatsConnect;

use crate::runtime::PgOptions;
use crate::secret::{Secret, SecretUrl};

/// NATS servers, credentials and TLS (PostgreSQL mode). Give secrets through the
/// environment rather than flags, which other users of the machine can see.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL, or several separated by commas (nats://host:port, tls://host:port).
    #[arg(long = "nats-url", env = "NATS_URL", global = true, hide_env_values = true, default_value = PgOptions::NATS_URL)]
    pub url: SecretUrl,
    /// User name for user/password authentication.
    #[arg(long = "nats-user", env = "NATS_USER", global = true, requires = "password")]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[arg(long = "nats-password", env = "NATS_PASSWORD", global = true, hide_env_values = true, requires = "user")]
    pub password: Option<Secret>,
    /// Token authentication.
    #[arg(long = "nats-token", env = "NATS_TOKEN", global = true, hide_env_values = true, conflicts_with_all = ["user", "creds"])]
    pub token: Option<Secret>,
    /// A .creds file (user JWT and NKey seed).
    #[arg(long = "nats-creds", env = "NATS_CREDS", global = true, conflicts_with = "user")]
    pub creds: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the servers' TLS certificates.
    #[arg(long = "nats-ca", env = "NATS_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients (with --nats-key).
    #[arg(long = "nats-cert", env = "NATS_CERT", global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --nats-cert.
    #[arg(long = "nats-key", env = "NATS_KEY", global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Refuse servers that do not speak TLS.
    #[arg(long = "nats-require-tls", env = "NATS_REQUIRE_TLS", global = true)]
    pub require_tls: bool,
    /// The connection's name in the server's monitoring (default: `orders <command>`).
    #[arg(long = "nats-name", env = "ORDERS_NATS_NAME", global = true)]
    pub name: Option<String>,
}

impl NatsArgs {
    /// The connection options these arguments give.
    pub fn connect_options(&self) -> NatsConnect {
        let mut options = NatsConnect::new(self.url.expose()).require_tls(self.require_tls);
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_password(user, password.expose());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose());
        }
        if let Some(path) = &self.creds {
            options = options.credentials_file(path);
        }
        if let Some(path) = &self.ca {
            options = options.ca_file(path);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            options = options.client_cert(cert, key);
        }
        if let Some(name) = &self.name {
            options = options.name(name);
        }
        options
    }
}

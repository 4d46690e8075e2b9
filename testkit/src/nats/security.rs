//! [`NatsSecurity`]: what a private [`NatsServer`](crate::NatsServer) asks of its clients —
//! user and password, or a token, and/or TLS — written into a nats-server config file.

use std::fmt::Write as _;
use std::path::Path;

use super::tls::TlsFiles;

/// How clients authenticate to a private nats-server, and whether it speaks TLS.
///
/// The default asks nothing (like [`NatsServer::start`](crate::NatsServer::start)).
///
/// ```no_run
/// # async fn demo() {
/// use tidemark_testkit::{NatsSecurity, NatsServer};
/// let nats = NatsServer::start_secured(NatsSecurity::user_password("relay", "s3cret").tls()).await;
/// let ca = nats.tls_files().expect("TLS").ca(); // give it to the client
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsSecurity {
    auth: NatsAuth,
    tls: TlsMode,
}

/// Which credentials a server requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsAuth {
    /// None: anyone may connect.
    #[default]
    None,
    /// One user with a password.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A shared token.
    Token(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum TlsMode {
    #[default]
    Off,
    Server,
    Mutual,
}

impl NatsSecurity {
    /// Requires user `user` with `password`.
    pub fn user_password(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self { auth: NatsAuth::UserPassword { user: user.into(), password: password.into() }, ..Self::default() }
    }

    /// Requires the token `token`.
    pub fn token(token: impl Into<String>) -> Self {
        Self { auth: NatsAuth::Token(token.into()), ..Self::default() }
    }

    /// Also requires TLS, with a server certificate from a throwaway CA (see
    /// [`NatsServer::tls_files`](crate::NatsServer::tls_files)).
    pub fn tls(mut self) -> Self {
        self.tls = TlsMode::Server;
        self
    }

    /// Also requires TLS and a client certificate signed by the throwaway CA.
    pub fn mutual_tls(mut self) -> Self {
        self.tls = TlsMode::Mutual;
        self
    }

    /// The credentials the server requires.
    pub fn auth(&self) -> &NatsAuth {
        &self.auth
    }

    /// Whether the server speaks TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls != TlsMode::Off
    }

    /// The nats-server configuration file for a server on `port` storing JetStream into
    /// `store`, with `tls` files when the server speaks TLS.
    pub(crate) fn config_file(&self, port: u16, store: &Path, tls: Option<&TlsFiles>) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "listen: \"127.0.0.1:{port}\"");
        let _ = writeln!(text, "server_name: \"tidemark-test-{port}\"");
        let _ = writeln!(text, "jetstream {{\n  store_dir: {}\n}}", quote(&store.to_string_lossy()));
        match &self.auth {
            NatsAuth::None => {}
            NatsAuth::UserPassword { user, password } => {
                let _ =
                    writeln!(text, "authorization {{\n  user: {}\n  password: {}\n}}", quote(user), quote(password));
            }
            NatsAuth::Token(token) => {
                let _ = writeln!(text, "authorization {{\n  token: {}\n}}", quote(token));
            }
        }
        if let Some(files) = tls.filter(|_| self.uses_tls()) {
            let _ = writeln!(text, "tls {{");
            let _ = writeln!(text, "  cert_file: {}", quote(&files.server_cert().to_string_lossy()));
            let _ = writeln!(text, "  key_file: {}", quote(&files.server_key().to_string_lossy()));
            let _ = writeln!(text, "  ca_file: {}", quote(&files.ca().to_string_lossy()));
            let _ = writeln!(text, "  verify: {}", self.tls == TlsMode::Mutual);
            let _ = writeln!(text, "  timeout: 2\n}}");
        }
        text
    }
}

/// A double-quoted config string: backslashes and quotes escaped, control characters refused
/// by replacing them (test credentials are plain ASCII anyway).
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            c if c.is_control() => quoted.push('_'),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_server_config_quotes_the_token() {
        let config = NatsSecurity::token("a\"b").config_file(4222, Path::new("/tmp/s"), None);
        assert!(config.contains("token: \"a\\\"b\""), "{config}");
        assert!(config.contains("listen: \"127.0.0.1:4222\""), "{config}");
        assert!(!config.contains("tls"), "{config}");
    }
}

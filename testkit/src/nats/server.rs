//! [`NatsServer`]: a private, throwaway nats-server with JetStream.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;

use super::security::NatsSecurity;
use super::tls::TlsFiles;
use crate::binaries::nats_server;
use crate::net::free_port;
use crate::process::{log_tail, ServerProcess, POLL_INTERVAL};

/// How long a start may take, from spawning to the first `INFO` line with JetStream enabled.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// How many times a start re-spawns a server that exited before it was ready (for example
/// because another process took the port in the meantime).
const START_ATTEMPTS: u32 = 20;

/// A throwaway nats-server of its own, with JetStream storing into a temporary directory, on a
/// free loopback port.
///
/// Use it for tests that kill or restart NATS; ordinary tests use [`nats_url`](crate::nats_url)
/// with per-test stream names from [`unique_name`](crate::unique_name). A restart keeps the port
/// and the JetStream store, so streams and their messages survive it. Dropping the value kills
/// the server and deletes its files; if the test process dies first, a watchdog does the same.
///
/// ```no_run
/// # async fn demo() {
/// let mut nats = tidemark_testkit::NatsServer::start().await;
/// let url = nats.url(); // nats://127.0.0.1:<port>
/// nats.kill();
/// nats.restart().await;
/// # }
/// ```
#[derive(Debug)]
pub struct NatsServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    process: Option<ServerProcess>,
    security: NatsSecurity,
    tls: Option<TlsFiles>,
}

impl NatsServer {
    /// Starts a new private server; returns once it greets clients with JetStream enabled.
    ///
    /// # Panics
    ///
    /// Panics with the server's log when nats-server is not installed or does not come up within
    /// 20 s.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(server) => server,
            Err(e) => panic!(
                "tidemark-testkit: cannot start a throwaway nats-server: {e}\n\
                 Install it with `apt-get install -y nats-server`."
            ),
        }
    }

    /// Starts a new private server that requires what `security` says (credentials, TLS);
    /// returns once it greets clients with JetStream enabled. A TLS server gets a new
    /// throwaway CA and certificates, see [`NatsServer::tls_files`].
    ///
    /// # Panics
    ///
    /// Panics with the server's log when nats-server (or, for TLS, openssl) is not installed
    /// or the server does not come up within 20 s.
    pub async fn start_secured(security: NatsSecurity) -> Self {
        match Self::try_start_with(security).await {
            Ok(server) => server,
            Err(e) => panic!(
                "tidemark-testkit: cannot start a throwaway nats-server: {e}\n\
                 Install it with `apt-get install -y nats-server openssl`."
            ),
        }
    }

    /// [`NatsServer::start`] returning the reason of a failure instead of panicking.
    pub(crate) async fn try_start() -> Result<Self, String> {
        Self::try_start_with(NatsSecurity::default()).await
    }

    async fn try_start_with(security: NatsSecurity) -> Result<Self, String> {
        let bin = nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("tidemark-nats-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let tls = if security.uses_tls() { Some(TlsFiles::generate(&dir.path().join("tls"))?) } else { None };
        let mut server = Self { dir, bin, port: 0, process: None, security, tls };
        server.launch(true).await?;
        Ok(server)
    }

    /// What the server requires of its clients.
    pub fn security(&self) -> &NatsSecurity {
        &self.security
    }

    /// The throwaway CA and certificates of a TLS server; `None` without TLS.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The client URL: `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL, like a crash. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// Shuts the server down cleanly (SIGINT) and waits until it has exited. Does nothing if it
    /// is not running.
    pub async fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.interrupt().await;
        }
    }

    /// Starts the server again on the same port with the same JetStream store (stopping it
    /// first if it runs); returns once it is ready.
    ///
    /// # Panics
    ///
    /// Panics with the server's log if it does not come up within 20 s.
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Err(e) = self.launch(false).await {
            panic!("tidemark-testkit: cannot restart the throwaway nats-server: {e}");
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    async fn launch(&mut self, pick_port: bool) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            if pick_port {
                self.port = free_port();
            }
            let mut process = self.spawn()?;
            match wait_ready(&mut process, self.port, deadline).await {
                Ok(()) => {
                    self.process = Some(process);
                    return Ok(());
                }
                Err(Failure::Exited(status)) => last_failure = format!("nats-server exited ({status})"),
                Err(Failure::Timeout(error)) => {
                    process.kill();
                    last_failure = format!("not ready after {START_DEADLINE:?}: {error}");
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{last_failure}\n{}", log_tail(&self.log_path())))
    }

    fn spawn(&self) -> Result<ServerProcess, String> {
        let dir = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        if self.security == NatsSecurity::default() {
            cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()]);
            cmd.args(["-n", &format!("tidemark-test-{}", self.port)]);
            cmd.arg("-sd").arg(dir.join("store"));
        } else {
            let config = dir.join("nats-server.conf");
            let text = self.security.config_file(self.port, &dir.join("store"), self.tls.as_ref());
            std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            cmd.arg("-c").arg(config);
        }
        cmd.current_dir(dir);
        ServerProcess::spawn(cmd, &self.log_path(), dir)
            .map_err(|e| format!("cannot spawn {}: {e}", self.bin.display()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

enum Failure {
    Exited(String),
    Timeout(String),
}

/// Polls until the server greets a client with an `INFO` line saying JetStream is enabled, the
/// process exits, or `deadline` passes.
async fn wait_ready(process: &mut ServerProcess, port: u16, deadline: Instant) -> Result<(), Failure> {
    let mut last_error = String::from("no connection attempt");
    loop {
        if let Some(status) = process.exit_status() {
            return Err(Failure::Exited(status));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::Timeout(last_error));
        }
        let attempt = remaining.min(Duration::from_secs(2));
        match tokio::time::timeout(attempt, read_info(port)).await {
            Ok(Ok(info)) if info.contains("\"jetstream\":true") => return Ok(()),
            Ok(Ok(info)) => last_error = format!("JetStream not enabled yet: {info}"),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("no INFO line within {attempt:?}"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Connects to `127.0.0.1:port` and returns the first line the server sends, which for a NATS
/// server is `INFO {json}`.
pub(crate) async fn read_info(port: u16) -> io::Result<String> {
    let stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await?;
    if line.starts_with("INFO ") {
        Ok(line.trim_end().to_owned())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, format!("not a NATS greeting: {line:?}")))
    }
}

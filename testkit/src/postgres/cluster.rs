//! [`PgCluster`]: a private, throwaway PostgreSQL server that tests may stop, kill and restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};
use tempfile::TempDir;

use crate::binaries::postgres_bin_dir;
use crate::net::free_port;
use crate::os_user::Identity;
use crate::process::{log_tail, ServerProcess, POLL_INTERVAL};

/// How long a start may take, from spawning `postgres` to the first successful query.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How many times a start re-spawns a `postgres` that exited before it was ready (a port taken in
/// the meantime, or shared memory still held by the backends of a killed server).
const START_ATTEMPTS: u32 = 40;

/// A throwaway PostgreSQL server of its own: fresh data directory (`initdb` into a temporary
/// directory), a free loopback port, trust authentication for the user `postgres`, and
/// `fsync=off` (a killed *process* loses nothing that was committed; only an OS crash would).
///
/// Use it for tests that stop, kill or restart the database; ordinary tests use
/// [`TestSchema`](crate::TestSchema) on the shared server instead. When the tests run as root the
/// server runs as the `postgres` OS user. Dropping the value shuts the server down and deletes its
/// files; if the test process dies first, a watchdog process does the same.
///
/// ```no_run
/// # async fn demo() {
/// let mut pg = tidemark_testkit::PgCluster::start().await;
/// let url = pg.url(); // postgres://postgres@127.0.0.1:<port>/postgres
/// pg.kill(); // SIGKILL the postmaster: connections to `url` now fail
/// pg.restart().await; // same port, same data: committed rows are still there
/// # }
/// ```
#[derive(Debug)]
pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    identity: Option<Identity>,
    port: u16,
    process: Option<ServerProcess>,
}

impl PgCluster {
    /// Creates and starts a new private server; returns once it answers queries.
    ///
    /// # Panics
    ///
    /// Panics with the server's log when no PostgreSQL executables are installed or the server
    /// does not come up within 30 s.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(cluster) => cluster,
            Err(e) => panic!(
                "tidemark-testkit: cannot start a throwaway PostgreSQL: {e}\n\
                 Install it with `apt-get install -y postgresql`."
            ),
        }
    }

    /// [`PgCluster::start`] returning the reason of a failure instead of panicking.
    pub(crate) async fn try_start() -> Result<Self, String> {
        let bin = postgres_bin_dir()?;
        let identity = Identity::for_postgres()?;
        let dir = tempfile::Builder::new()
            .prefix("tidemark-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        if let Some(identity) = identity {
            identity
                .chown(dir.path())
                .map_err(|e| format!("cannot chown {} to postgres: {e}", dir.path().display()))?;
        }
        initdb(&bin, identity, dir.path()).await?;
        let mut cluster = Self { dir, bin, identity, port: 0, process: None };
        cluster.launch(true).await?;
        Ok(cluster)
    }

    /// The URL of the `postgres` database: `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of another database on this server (which the caller creates).
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port; it stays the same across [`stop`](Self::stop) and
    /// [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running (it has not been stopped or killed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(process) => process.exit_status().is_none(),
            None => false,
        }
    }

    /// Shuts the server down cleanly (fast shutdown: open transactions are rolled back, clients
    /// disconnected) and waits until it has exited. Does nothing if it is not running.
    pub async fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.interrupt().await;
        }
    }

    /// Kills the postmaster with SIGKILL, like a crash; the next start runs crash recovery.
    /// Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port and data directory (stopping it first if it
    /// runs); returns once it answers queries.
    ///
    /// # Panics
    ///
    /// Panics with the server's log if it does not come up within 30 s.
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Err(e) = self.launch(false).await {
            panic!("tidemark-testkit: cannot restart the throwaway PostgreSQL: {e}");
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Spawns `postgres` until one answers a query, on a fresh port each try if `pick_port`.
    async fn launch(&mut self, pick_port: bool) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            if pick_port {
                self.port = free_port();
            }
            let mut process = self.spawn()?;
            match wait_ready(&mut process, &self.url(), deadline).await {
                Ok(()) => {
                    self.process = Some(process);
                    return Ok(());
                }
                Err(Failure::Exited(status)) => last_failure = format!("postgres exited ({status})"),
                Err(Failure::Timeout(error)) => {
                    process.kill();
                    last_failure = format!("not ready after {START_DEADLINE:?}: {error}");
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{last_failure}\n{}", log_tail(&self.log_path())))
    }

    fn spawn(&self) -> Result<ServerProcess, String> {
        let dir = self.dir.path();
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D").arg(dir.join("data"));
        cmd.arg("-k").arg(dir);
        cmd.args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"]);
        cmd.args(["-c", "fsync=off", "-c", "max_connections=200"]);
        cmd.current_dir(dir).env("LC_ALL", "C");
        if let Some(identity) = self.identity {
            identity.apply(&mut cmd);
        }
        ServerProcess::spawn(cmd, &self.log_path(), dir)
            .map_err(|e| format!("cannot spawn {}: {e}", self.bin.join("postgres").display()))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.interrupt_blocking();
        }
    }
}

/// Runs `initdb` for a new data directory `<dir>/data`.
async fn initdb(bin: &Path, identity: Option<Identity>, dir: &Path) -> Result<(), String> {
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D").arg(dir.join("data"));
    cmd.args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    cmd.current_dir(dir).env("LC_ALL", "C");
    if let Some(identity) = identity {
        identity.apply(&mut cmd);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| format!("initdb task failed: {e}"))?
        .map_err(|e| format!("cannot run {}: {e}", bin.join("initdb").display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "initdb failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

enum Failure {
    /// The process exited before it was ready.
    Exited(String),
    /// Still not ready at the deadline; the last connection error.
    Timeout(String),
}

/// Polls until a connection to `url` succeeds, the process exits, or `deadline` passes.
async fn wait_ready(process: &mut ServerProcess, url: &str, deadline: Instant) -> Result<(), Failure> {
    let options = PgConnectOptions::from_str(url).map_err(|e| Failure::Timeout(e.to_string()))?;
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
        match tokio::time::timeout(attempt, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("connection attempt timed out after {attempt:?}"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

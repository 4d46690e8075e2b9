//! A long-running server child process with a watchdog, and ways to end it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::watchdog::Watchdog;

/// How long a server gets to shut down after SIGINT before it is killed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often exits and readiness are polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running server: the child process plus its [`Watchdog`].
///
/// Ending it (`kill`, `interrupt`) consumes the value, so a server cannot be stopped twice.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    watchdog: Watchdog,
}

impl ServerProcess {
    /// Spawns `cmd` in its own process group with stdout and stderr appended to `log`; the
    /// watchdog removes `cleanup_dir` if this process exits while the server still runs.
    pub(crate) fn spawn(cmd: Command, log: &Path, cleanup_dir: &Path) -> io::Result<Self> {
        Self::spawn_with(cmd, log, Some(cleanup_dir))
    }

    /// Like [`ServerProcess::spawn`]; with `None` the watchdog removes nothing.
    pub(crate) fn spawn_with(mut cmd: Command, log: &Path, cleanup_dir: Option<&Path>) -> io::Result<Self> {
        let log_file = OpenOptions::new().create(true).append(true).open(log)?;
        cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file).process_group(0);
        let mut child = cmd.spawn()?;
        match Watchdog::arm(child.id(), cleanup_dir) {
            Ok(watchdog) => Ok(Self { child, watchdog }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The exit status if the server has exited (a failed status check counts as exited).
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(describe(status)),
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// SIGKILL, then reap the process.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.watchdog.disarm();
    }

    /// SIGINT (a graceful shutdown for both PostgreSQL and nats-server), then wait up to
    /// [`SHUTDOWN_GRACE`] without blocking the runtime, then SIGKILL.
    pub(crate) async fn interrupt(mut self) {
        self.signal(Signal::SIGINT);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.exit_status().is_none() && Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        self.kill();
    }

    /// Like [`ServerProcess::interrupt`], but blocking the thread; for `Drop`.
    pub(crate) fn interrupt_blocking(mut self) {
        self.signal(Signal::SIGINT);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.exit_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL_INTERVAL);
        }
        self.kill();
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH: it has exited already; the caller reaps it.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The last few kilobytes of a server's log file, for failure messages.
pub(crate) fn log_tail(log: &Path) -> String {
    const TAIL: u64 = 3000;
    let read = || -> io::Result<String> {
        let mut file = File::open(log)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => format!("--- last lines of {} ---\n{text}", log.display()),
        Err(e) => format!("(no log at {}: {e})", log.display()),
    }
}

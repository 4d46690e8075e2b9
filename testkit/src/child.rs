//! [`Child`]: a process a test starts and may kill with SIGKILL at any moment.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{log_tail, ServerProcess};

/// A child process in its own process group, its output appended to a log file, killed by a
/// watchdog if the test process dies first. For tests that crash their own components (a relay,
/// a projection runner, an application) with `kill -9` at random moments.
#[derive(Debug)]
pub struct Child {
    log: PathBuf,
    process: Option<ServerProcess>,
}

impl Child {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    ///
    /// # Errors
    ///
    /// The I/O error of opening the log or spawning the process.
    pub fn spawn(cmd: Command, log: &Path) -> std::io::Result<Self> {
        let process = ServerProcess::spawn_with(cmd, log, None)?;
        Ok(Self { log: log.to_owned(), process: Some(process) })
    }

    /// Whether it still runs; otherwise how it ended.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.process.as_mut() {
            Some(process) => process.exit_status(),
            None => Some("killed".to_owned()),
        }
    }

    /// SIGKILL, like a crash, and reap it. Does nothing if it was killed already.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    /// SIGINT (a graceful shutdown), up to 10 s to exit, then SIGKILL.
    pub async fn interrupt(&mut self) {
        if let Some(process) = self.process.take() {
            process.interrupt().await;
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

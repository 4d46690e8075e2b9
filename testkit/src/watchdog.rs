//! A tiny shell process that shuts a server down when the test process goes away.
//!
//! Servers are spawned in their own process group, so Ctrl-C on `cargo test` does not reach them
//! and nothing in Rust runs when a test binary exits (statics are never dropped, a killed process
//! runs no destructors). Each server therefore gets a watchdog: `sh` reading a pipe whose write end
//! only this process holds. When the pipe closes (this process exited, however it exited) the
//! watchdog sends SIGINT to the server, SIGKILL after 10 s, and removes the server's directory.
//! Writing `disarm` first makes it exit without touching anything; that is what an orderly stop
//! does after it has stopped the server itself.

use std::io::{self, Write};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

const SCRIPT: &str = r#"
trap '' INT TERM HUP
while IFS= read -r line; do
  if [ "$line" = disarm ]; then exit 0; fi
done
kill -INT "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$1" 2>/dev/null
if [ -n "$2" ]; then rm -rf -- "$2"; fi
"#;

/// The watchdog of one server process; see the module documentation.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog for the process `pid`, which also removes `dir` when it fires.
    pub(crate) fn arm(pid: u32, dir: Option<&Path>) -> io::Result<Self> {
        let dir = dir.map(|d| d.as_os_str().to_owned()).unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("tidemark-watchdog")
            .arg(pid.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Tells the watchdog to exit without touching the server, and reaps it.
    pub(crate) fn disarm(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // If the write fails the watchdog is already gone: nothing left to disarm.
            let _ = stdin.write_all(b"disarm\n");
        }
        let _ = self.child.wait();
    }
}

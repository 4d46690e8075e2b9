//! Best-effort SQL from `Drop`: dropping a test's schema or database.

use std::sync::mpsc;
use std::time::Duration;

use super::admin;

/// How long a `Drop` waits for its cleanup before giving up on it.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(20);

/// Runs `statements` one by one on a new connection to `url`, in a thread of its own with its own
/// runtime, so it works from `Drop` both inside and outside a tokio runtime. Waits at most
/// [`CLEANUP_DEADLINE`]; failures are reported on stderr, never as panics.
pub(crate) fn run_best_effort(url: String, statements: Vec<String>) {
    let (done_tx, done_rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("tidemark-testkit-cleanup".to_owned()).spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|runtime| runtime.block_on(admin::execute(&url, &statements)));
        let _ = done_tx.send(result);
    });
    if let Err(e) = spawned {
        eprintln!("tidemark-testkit: cleanup skipped, cannot start a thread: {e}");
        return;
    }
    match done_rx.recv_timeout(CLEANUP_DEADLINE) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("tidemark-testkit: cleanup failed (left behind): {e}"),
        Err(_) => eprintln!("tidemark-testkit: cleanup still running after {CLEANUP_DEADLINE:?}"),
    }
}

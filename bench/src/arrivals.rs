//! Open-loop arrivals on a fixed schedule, from a thread of their own. A thread's sleep
//! wakes within tens of microseconds of the instant asked for; tokio's timer rounds every
//! deadline up to its next millisecond tick, which would start sends 0.6–0.9 ms late at
//! p50 and bunch them on the ticks (two per tick at 2,000/s).

use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The instants `start + n * step` before `close`, each sent when it comes (or at once,
/// if the thread wakes late, so none is skipped). Ends when the receiver is dropped.
pub(crate) fn every(start: Instant, step: Duration, close: Instant) -> Result<mpsc::UnboundedReceiver<Instant>> {
    let (arrivals, arriving) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("bench-arrivals".into())
        .spawn(move || {
            for n in 0u32.. {
                let at = start + step * n;
                if at >= close {
                    return;
                }
                std::thread::sleep(at.into_std().saturating_duration_since(std::time::Instant::now()));
                if arrivals.send(at).is_err() {
                    return;
                }
            }
        })
        .context("starting the arrivals' thread")?;
    Ok(arriving)
}

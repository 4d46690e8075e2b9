//! CPU accounting from /proc: this process (the client), the server backends serving
//! one measurement's pool, and the whole machine. On a 2-core machine where client and
//! server share the cores, this says which side a figure is limited by.

use std::collections::HashMap;
use std::time::Duration;

use crate::db::BenchDb;

/// Above this share of the machine taken by other processes during a window, a figure
/// is measured again, and flagged if it stays above.
pub(crate) const FOREIGN_LOAD_LIMIT: f64 = 0.10;

/// Linux reports process times in USER_HZ ticks, 100 per second on every common platform.
const TICK: Duration = Duration::from_millis(10);

/// CPU time spent during a window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUsage {
    /// By this process (all its threads).
    pub client: Duration,
    /// By the server backends of the measured pool (not WAL writer, checkpointer, …).
    pub server: Duration,
    /// Busy share of all cores of the machine, 0 to 1 (anything else running included).
    pub machine_busy: f64,
    /// Busy share of the machine used by neither: PostgreSQL's background processes,
    /// the kernel's threads, and whatever else runs on the machine (other users' builds).
    pub other: f64,
}

/// Counters at one instant.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuMark {
    client: u64,
    server: HashMap<i32, u64>,
    machine: (u64, u64),
}

impl CpuMark {
    /// Reads the counters; missing /proc files count as zero (the figures then say 0).
    pub(crate) async fn take(db: &BenchDb, tag: &str) -> Self {
        let pids = db.backend_pids(tag).await.unwrap_or_default();
        let server = pids.into_iter().map(|pid| (pid, process_ticks(&pid.to_string()))).collect();
        Self { client: process_ticks("self"), server, machine: machine_ticks() }
    }

    /// What was used between `self` and `later`.
    pub(crate) fn until(&self, later: &CpuMark) -> CpuUsage {
        let server: u64 =
            later.server.iter().map(|(pid, t)| t.saturating_sub(self.server.get(pid).copied().unwrap_or(0))).sum();
        let client = later.client.saturating_sub(self.client);
        let busy = later.machine.0.saturating_sub(self.machine.0);
        let total = later.machine.1.saturating_sub(self.machine.1).max(1) as f64;
        CpuUsage {
            client: ticks(client),
            server: ticks(server),
            machine_busy: busy as f64 / total,
            other: busy.saturating_sub(client + server) as f64 / total,
        }
    }
}

/// Waits (up to `max`) until the machine is mostly idle: less than a quarter of its
/// cores busy over 300 ms. Returns the last busy share seen.
pub(crate) async fn wait_for_quiet(max: Duration) -> f64 {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let start = machine_ticks();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let end = machine_ticks();
        let busy = end.0.saturating_sub(start.0) as f64 / end.1.saturating_sub(start.1).max(1) as f64;
        if busy < 0.25 || tokio::time::Instant::now() >= deadline {
            return busy;
        }
    }
}

pub(crate) fn ticks(n: u64) -> Duration {
    TICK * u32::try_from(n).unwrap_or(u32::MAX)
}

/// utime + stime of a process, from /proc/<pid>/stat.
fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may hold spaces; the fields after it are positional, the first
    // being field 3 (state): utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// CPU ticks (utime + stime) of every process named `nats-server` on this machine.
pub(crate) fn nats_server_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "nats-server"))
        .map(|e| process_ticks(&e.file_name().to_string_lossy()))
        .sum()
}

/// (busy, total) ticks of all cores, from the first line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return (0, 0) };
    let Some(line) = stat.lines().next() else { return (0, 0) };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user)
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_counters() {
        // Spins until the kernel has charged this process a tick (10 ms of CPU); on a busy
        // machine that takes longer than 10 ms of wall time, so the bound is generous.
        let (before, spin) = (process_ticks("self"), std::time::Instant::now());
        while process_ticks("self") == before && spin.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                std::hint::black_box(0u64);
            }
        }
        assert!(process_ticks("self") > before, "no CPU tick charged after {:?} of spinning", spin.elapsed());
        let (busy, total) = machine_ticks();
        assert!(total > 0 && busy <= total);
    }
}

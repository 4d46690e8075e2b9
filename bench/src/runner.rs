//! The timed runner: N concurrent writers, a warm-up, then a fixed window in which
//! completed operations are counted and their latencies recorded.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::time::{sleep_until, Instant};

use crate::cpu::{CpuMark, CpuUsage};
use crate::db::BenchDb;

/// One writer's unit of work, run back to back.
pub(crate) trait Op: Send + 'static {
    /// Does one operation; returns how many rows or events it wrote.
    fn run(&mut self) -> impl Future<Output = Result<u64>> + Send;

    /// Brings the writer to its steady state before the warm-up's clock starts (by default
    /// nothing: the time-based warm-up is enough).
    fn prime(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Warm-up and window lengths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub warmup: Duration,
    pub window: Duration,
}

/// What one measurement saw.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub writers: usize,
    /// Operations completed inside the window.
    pub ops: u64,
    /// Rows or events written by those operations.
    pub items: u64,
    pub window: Duration,
    /// Latency of the operations completed inside the window, in microseconds.
    pub latency: Histogram<u64>,
    /// Every operation completed, warm-up and the last one past the window included.
    pub total_ops: u64,
    pub cpu: CpuUsage,
}

impl Sample {
    pub(crate) fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    pub(crate) fn items_per_s(&self) -> f64 {
        self.items as f64 / self.window.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub(crate) fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// CPU microseconds per operation of the client and of the server backends.
    pub(crate) fn cpu_us_per_op(&self) -> (f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.ops.max(1) as f64;
        (per(self.cpu.client), per(self.cpu.server))
    }
}

/// Per-writer counts, merged at the end.
struct Tally {
    ops: u64,
    items: u64,
    total: u64,
    latency: Histogram<u64>,
}

pub(crate) fn histogram() -> Result<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Runs `ops` (one per writer) concurrently: warm-up, then the window. `tag` names the
/// measurement's connections, for CPU accounting of their server backends.
pub(crate) async fn measure<O: Op>(db: &BenchDb, tag: &str, plan: Plan, mut ops: Vec<O>) -> Result<Sample> {
    let writers = ops.len();
    futures_util::future::try_join_all(ops.iter_mut().map(Op::prime)).await?;
    let open = Instant::now() + plan.warmup;
    let close = open + plan.window;
    let handles: Vec<_> = ops.into_iter().map(|op| tokio::spawn(drive(op, open, close))).collect();
    sleep_until(open).await;
    let first = CpuMark::take(db, tag).await;
    sleep_until(close).await;
    let cpu = first.until(&CpuMark::take(db, tag).await);
    let mut sample =
        Sample { writers, ops: 0, items: 0, window: plan.window, latency: histogram()?, total_ops: 0, cpu };
    for handle in handles {
        let tally = handle.await.context("a writer panicked")??;
        sample.ops += tally.ops;
        sample.items += tally.items;
        sample.total_ops += tally.total;
        sample.latency.add(&tally.latency)?;
    }
    anyhow::ensure!(sample.ops > 0, "no operation completed inside the window");
    Ok(sample)
}

async fn drive<O: Op>(mut op: O, open: Instant, close: Instant) -> Result<Tally> {
    let mut tally = Tally { ops: 0, items: 0, total: 0, latency: histogram()? };
    loop {
        let began = Instant::now();
        if began >= close {
            return Ok(tally);
        }
        let items = op.run().await?;
        let done = Instant::now();
        tally.total += 1;
        if done >= open && done < close {
            tally.ops += 1;
            tally.items += items;
            let micros = u64::try_from((done - began).as_micros()).unwrap_or(u64::MAX);
            tally.latency.saturating_record(micros.max(1));
        }
    }
}

//! F6's measuring side, the same for tidemark's pipeline and the raw one: an open-loop
//! sender (arrivals on a fixed schedule, latency counted from the scheduled instant) and
//! a detector that learns when each event's read-model row is committed and readable by
//! another connection.
//!
//! Detection: an `AFTER INSERT … FOR EACH ROW` trigger on the read-model table calls
//! `pg_notify(<channel>, stream_id)`. PostgreSQL queues the notification at commit and
//! hands it to a listening session only once the writing transaction is visible to that
//! session's snapshot, so a notification received on the detector's own connection (LISTEN)
//! means "committed and readable by another connection". The detector does not poll:
//! it costs one trigger call per row and one wake-up of its own connection per committed
//! read-model transaction, the same on both sides.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use hdrhistogram::Histogram;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::db::ADMIN;
use crate::runner::histogram;

/// Longest wait, after the last send, for every event to become visible.
const GRACE: Duration = Duration::from_secs(30);

/// Most sends under way at once. Above a pipeline's capacity (F6 at 50 % is above the raw
/// pipeline's on a fast machine) the arrivals pile up: without a bound each one waited for
/// a pool connection, and the last ones gave up when the pool's acquire timeout passed,
/// which ended the whole scenario. With it they wait here, where nothing times out, and
/// their latency, counted from the scheduled instant, includes the wait. No rate a target
/// judges has this many sends under way.
const MOST_SENDS_IN_FLIGHT: usize = 256;

/// The trigger function, created once per run in `schema`: notifies the channel named
/// by the trigger's argument with the new row's stream id.
pub(crate) fn function_sql(schema: &str) -> String {
    format!(
        "{ADMIN} CREATE OR REPLACE FUNCTION {schema}.f6_visible() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_notify(TG_ARGV[0], NEW.stream_id); RETURN NULL; END $$"
    )
}

/// The trigger on a read-model table (qualified), notifying `channel`.
pub(crate) fn trigger_sql(schema: &str, table: &str, channel: &str) -> String {
    format!(
        "{ADMIN} CREATE TRIGGER f6_visible AFTER INSERT ON {table} FOR EACH ROW \
         EXECUTE FUNCTION {schema}.f6_visible('{channel}')"
    )
}

/// Receives the trigger's notifications on its own connection and time-stamps them.
pub(crate) struct Detector {
    arrivals: mpsc::UnboundedReceiver<(String, Instant)>,
    task: JoinHandle<()>,
}

impl Detector {
    /// Listens on `channel` through a connection of `pool` (LISTEN is sent before this returns).
    pub(crate) async fn listen(pool: &PgPool, channel: &str) -> Result<Self> {
        let mut listener = PgListener::connect_with(pool).await.context("detector: connecting")?;
        listener.listen(channel).await.context("detector: LISTEN")?;
        let (sender, arrivals) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(n) = listener.recv().await {
                if sender.send((n.payload().to_owned(), Instant::now())).is_err() {
                    return;
                }
            }
        });
        Ok(Self { arrivals, task })
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One open-loop measurement's schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// Events per second.
    pub rate: f64,
    /// Sent before the window; they must arrive, their latency is not recorded.
    pub warmup: Duration,
    pub window: Duration,
}

/// What an open-loop measurement saw.
#[derive(Debug)]
pub(crate) struct Seen {
    /// Scheduled instant → visible, of the events scheduled inside the window (µs).
    pub latency: Histogram<u64>,
    /// Scheduled instant → the send actually started (timer and runtime lateness, and the
    /// wait for a free slot when the pipeline is behind; µs).
    pub lateness: Histogram<u64>,
    /// How long the sends (append or insert) took (µs).
    pub send: Histogram<u64>,
    /// Events scheduled inside the window.
    pub events: u64,
    /// Per event scheduled inside the window: its stream, when its send returned and
    /// when it became visible (for the per-hop breakdown, see `hop_breakdown.rs`).
    pub traces: Vec<Trace>,
}

/// When one event's send returned and when it became visible.
#[derive(Debug)]
pub(crate) struct Trace {
    pub stream: String,
    pub appended: Instant,
    pub visible: Instant,
}

/// Sends one event per scheduled instant (each send in its own task, so a slow send never
/// delays the next one), then waits until the detector has seen every event.
/// `send(stream_id)` writes one event of a new stream.
pub(crate) async fn open_loop<S, Fut>(detector: &mut Detector, schedule: Schedule, send: S) -> Result<Seen>
where
    S: Fn(String) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let mut scheduled = HashMap::new();
    let mut sends = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(20);
    let open = start + schedule.warmup;
    let close = open + schedule.window;
    let step = Duration::from_secs_f64(1.0 / schedule.rate);
    let mut arriving = crate::arrivals::every(start, step, close)?;
    let in_flight = Arc::new(Semaphore::new(MOST_SENDS_IN_FLIGHT));
    while let Some(at) = arriving.recv().await {
        let stream = crate::framework::new_account()?.as_str().to_owned();
        scheduled.insert(stream.clone(), at);
        let sending = send(stream.clone());
        let in_flight = in_flight.clone();
        sends.spawn(async move {
            let _permit = in_flight.acquire_owned().await?;
            let began = Instant::now();
            sending.await?;
            anyhow::Ok((stream, began - at, began, Instant::now()))
        });
    }
    let (mut lateness, mut send) = (histogram()?, histogram()?);
    let mut appended = HashMap::new();
    while let Some(done) = sends.join_next().await {
        let (stream, late, began, done) = done.context("a send panicked")??;
        lateness.saturating_record(micros(late));
        send.saturating_record(micros(done - began));
        appended.insert(stream, done);
    }
    let mut traces = Vec::new();
    let (mut latency, mut events) = (histogram()?, 0);
    let deadline = Instant::now() + GRACE;
    while !scheduled.is_empty() {
        let Ok(Some((stream, at))) = tokio::time::timeout_at(deadline, detector.arrivals.recv()).await else {
            bail!("{} events did not become visible within {GRACE:?} after the last send", scheduled.len());
        };
        let Some(sent) = scheduled.remove(&stream) else { continue };
        if sent >= open {
            events += 1;
            latency.saturating_record(micros(at.saturating_duration_since(sent)));
            if let Some(appended) = appended.remove(&stream) {
                traces.push(Trace { stream, appended, visible: at });
            }
        }
    }
    Ok(Seen { latency, lateness, send, events, traces })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

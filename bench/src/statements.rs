//! Counting the statements the client sends, by kind, from sqlx's own query log
//! (tracing events with target `sqlx::query`, one per executed statement; sqlx's
//! `BEGIN` is the one statement it sends without logging it).
//!
//! The counter is off except during the profile: sqlx checks whether its query log
//! is enabled before building the log line, so the measurements pay one atomic load
//! per statement.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

const TARGET: &str = "sqlx::query";

static COUNTING: AtomicBool = AtomicBool::new(false);
static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Installs the global subscriber: warnings (or `RUST_LOG`) to stderr, plus the counter.
pub(crate) fn install() {
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    let _ = tracing_subscriber::registry().with(log).with(Counter.with_filter(Gate)).try_init();
}

/// Clears the counts and starts counting.
pub(crate) fn start() {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    COUNTING.store(true, Ordering::Release);
}

/// Stops counting and returns the statements seen, by sqlx's summary (their first words).
pub(crate) fn stop() -> BTreeMap<String, u64> {
    COUNTING.store(false, Ordering::Release);
    std::mem::take(&mut *COUNTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Lets sqlx's query events through while counting.
struct Gate;

impl<S> Filter<S> for Gate {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.target() == TARGET && COUNTING.load(Ordering::Relaxed)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() == TARGET {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }
}

struct Counter;

impl<S: Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut summary = Summary(String::new());
        event.record(&mut summary);
        *COUNTS.lock().unwrap_or_else(|e| e.into_inner()).entry(summary.0).or_default() += 1;
    }
}

struct Summary(String);

impl Visit for Summary {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.0.is_empty() {
            self.0 = format!("{value:?}").trim_matches('"').to_owned();
        }
    }
}

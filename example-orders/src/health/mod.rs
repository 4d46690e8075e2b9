//! Liveness and readiness over HTTP, for every long-running process of the app.
//!
//! - `GET /livez` (and its alias `/health`): 200 while the process serves HTTP at all.
//! - `GET /readyz`: 200 when every [`Check`] of the process passes, else 503; the JSON body
//!   lists each check with what it found (why, on a failure). Results are cached for
//!   [`CACHE_FOR`], so probes never load PostgreSQL or NATS.
//!
//! What each process checks: `serve` PostgreSQL and NATS (none in the embedded mode);
//! `relay` those two and its relay, ready when it leads *or stands by* (a standby is
//! healthy: it takes over when the leader dies); `projections run` those two and its
//! consumers, each of which must hold at least one partition of the feed (an instance
//! beyond the number of partitions holds none and so reports not ready).

mod check;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use check::{Check, Outcome, CHECK_TIMEOUT};
pub use serve::{health_routes, serve_health, HealthError};

/// How long a readiness result is reused before the checks run again.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// The checks of one process, with their last result. Cloning shares the cache.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Check>>,
    last: Arc<Mutex<Option<(Instant, Report)>>>,
}

/// The result of every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `ready` or `not ready`.
    pub status: &'static str,
    /// Each check's outcome, in order.
    pub checks: Vec<Outcome>,
}

impl Report {
    /// Whether every check passed.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|outcome| outcome.ok)
    }
}

impl Readiness {
    /// A process that is ready once `checks` pass (always, with none).
    pub fn new(checks: Vec<Check>) -> Self {
        Self { checks: Arc::new(checks), last: Arc::default() }
    }

    /// The checks of a process on PostgreSQL (`pool`) and NATS (`client`, none on the
    /// PostgreSQL feed), plus `more`.
    pub fn deployment(
        pool: sqlx::PgPool,
        client: Option<async_nats::Client>,
        more: impl IntoIterator<Item = Check>,
    ) -> Self {
        let mut checks = vec![Check::Postgres(pool)];
        checks.extend(client.map(Check::Nats));
        checks.extend(more);
        Self::new(checks)
    }

    /// The last result if younger than [`CACHE_FOR`], else the checks' new result (they
    /// run concurrently, so it takes at most [`CHECK_TIMEOUT`]). Concurrent callers wait
    /// for one run of the checks.
    pub async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return report.clone();
            }
        }
        let checks = futures_util::future::join_all(self.checks.iter().map(Check::run)).await;
        let ready = checks.iter().all(|outcome| outcome.ok);
        let report = Report { status: if ready { "ready" } else { "not ready" }, checks };
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

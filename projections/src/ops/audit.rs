//! `projections audit`: the version a projection has taken in of every stream, compared
//! with the store's stream heads. What an operator runs after an incident.

use std::time::{Duration, Instant};

use serde::Serialize;
use tidemark::{StreamId, StreamVersion};

use super::registry::ProjectionOps;
use crate::error::Result;
use crate::read_models::Seen;
use tidemark::LogDiagnostics;

/// Streams read from each side per page.
const PAGE: usize = 5_000;

/// Findings listed in a report at most (the counts count them all).
const LISTED: usize = 1_000;

/// What `projections audit` found for one projection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditReport {
    /// The projection.
    pub projection: String,
    /// Streams in the store's readable log.
    pub streams: u64,
    /// Streams the projection has taken in up to their last version.
    pub current: u64,
    /// Of `current`, streams parked behind a poison event (see `dlq list`).
    pub parked: u64,
    /// Streams the projection has taken in only partly.
    pub behind: u64,
    /// Streams of the store the projection has never taken in.
    pub missing: u64,
    /// Streams the projection has taken in further than the store holds (or that the
    /// store does not hold at all): a read model of another store, or a lost store.
    pub ahead: u64,
    /// The first findings, in stream order.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Whether anything is behind, missing or ahead.
    pub fn has_problems(&self) -> bool {
        self.behind + self.missing + self.ahead > 0
    }
}

/// One stream whose version in the projection differs from the store's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// `behind`, `missing` or `ahead`.
    pub kind: &'static str,
    /// The stream.
    pub stream_id: String,
    /// The last version the projection has taken in (0: none).
    pub applied: u64,
    /// The stream's last version in the store (0: none).
    pub head: u64,
}

impl AuditReport {
    fn found(&mut self, kind: &'static str, stream: &StreamId, applied: u64, head: u64) {
        match kind {
            "behind" => self.behind += 1,
            "missing" => self.missing += 1,
            _ => self.ahead += 1,
        }
        if self.findings.len() < LISTED {
            self.findings.push(Finding { kind, stream_id: stream.to_string(), applied, head });
        }
    }

    fn compare(&mut self, stream: &StreamId, seen: Seen, head: u64) {
        self.streams += 1;
        match seen.version.0.cmp(&head) {
            std::cmp::Ordering::Less => self.found("behind", stream, seen.version.0, head),
            std::cmp::Ordering::Greater => self.found("ahead", stream, seen.version.0, head),
            std::cmp::Ordering::Equal => {
                self.current += 1;
                self.parked += u64::from(seen.parked);
            }
        }
    }
}

/// Audits `projection` against `store`; with a `wait`, audits again every half second
/// while it finds problems, until they are gone or the wait has passed (for a system that
/// is still taking writes in).
pub(crate) async fn audit<S: LogDiagnostics>(
    store: &S,
    projection: &dyn ProjectionOps,
    wait: Duration,
) -> Result<AuditReport> {
    let deadline = Instant::now() + wait;
    loop {
        let report = audit_once(store, projection).await?;
        if !report.has_problems() || Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One pass: the store's stream heads and the projection's seen streams, both in stream
/// id order, merged.
async fn audit_once<S: LogDiagnostics>(store: &S, projection: &dyn ProjectionOps) -> Result<AuditReport> {
    let mut report = AuditReport { projection: projection.name().to_owned(), ..AuditReport::default() };
    let mut heads: Pages<StreamVersion> = Pages::default();
    let mut seen: Pages<Seen> = Pages::default();
    loop {
        if heads.needs_page() {
            let page = store.stream_heads(heads.after.as_ref(), PAGE).await?;
            heads.fill(page);
        }
        if seen.needs_page() {
            let page = projection.seen_streams(seen.after.as_ref(), PAGE).await?;
            seen.fill(page);
        }
        match (heads.peek(), seen.peek()) {
            (None, None) => return Ok(report),
            (Some((stream, head)), None) => {
                report.streams += 1;
                report.found("missing", stream, 0, head.0);
                heads.next += 1;
            }
            (None, Some((stream, taken))) => {
                report.found("ahead", stream, taken.version.0, 0);
                seen.next += 1;
            }
            (Some((in_store, head)), Some((in_projection, taken))) => {
                match in_store.as_str().cmp(in_projection.as_str()) {
                    std::cmp::Ordering::Less => {
                        report.streams += 1;
                        report.found("missing", in_store, 0, head.0);
                        heads.next += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        report.found("ahead", in_projection, taken.version.0, 0);
                        seen.next += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        report.compare(in_store, *taken, head.0);
                        heads.next += 1;
                        seen.next += 1;
                    }
                }
            }
        }
    }
}

/// One side of the merge: the current page and where the next one starts.
struct Pages<T> {
    page: Vec<(StreamId, T)>,
    next: usize,
    after: Option<StreamId>,
    done: bool,
}

impl<T> Default for Pages<T> {
    fn default() -> Self {
        Self { page: Vec::new(), next: 0, after: None, done: false }
    }
}

impl<T> Pages<T> {
    fn needs_page(&self) -> bool {
        !self.done && self.next >= self.page.len()
    }

    fn fill(&mut self, page: Vec<(StreamId, T)>) {
        self.done = page.is_empty();
        if let Some((last, _)) = page.last() {
            self.after = Some(last.clone());
        }
        self.page = page;
        self.next = 0;
    }

    fn peek(&self) -> Option<(&StreamId, &T)> {
        self.page.get(self.next).map(|(s, t)| (s, t))
    }
}

//! T: the cost of tenants (migration 1004). Single-event appends to new streams, at the
//! profile's writer count, on three tables in the same run: the events table with
//! migration 1004's column, index, trigger and policies taken off again (the baseline),
//! the table as migrated without a tenant in the events, and through a tenant's view
//! (`PgEventStore::for_tenant`, every event carrying the tenant). Then pages of 100 events
//! of the log, read by every writer from a log of two tenants: the whole log, and one
//! tenant's part through its view.

use anyhow::Result;
use tidemark::{AppendRequest, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent};
use tidemark_postgres::{PgEventStore, PgTenantStore};
use uuid::Uuid;

use crate::domain::{opened, AccountEvent};
use crate::figure::{Counted, Figure};
use crate::framework::new_account;
use crate::runner::{measure, Op, Sample};
use crate::scenarios::Suite;

/// Events in the log the read series page through (half per tenant, interleaved).
const LOG_EVENTS: usize = 20_000;
/// Events per page read.
const PAGE: usize = 100;

/// Where the appends of a series go.
#[derive(Clone)]
enum Target {
    Store(PgEventStore),
    Tenant(PgTenantStore),
}

impl Target {
    async fn append(&self, request: AppendRequest) -> tidemark::Result<tidemark::AppendOutcome> {
        match self {
            Self::Store(s) => s.append(request).await,
            Self::Tenant(t) => t.append(request).await,
        }
    }

    async fn read_log(&self, after: LogPosition, n: usize) -> tidemark::Result<Vec<tidemark::RecordedEvent>> {
        match self {
            Self::Store(s) => s.read_log(after, n).await,
            Self::Tenant(t) => t.read_log(after, n).await,
        }
    }
}

/// One single-event append to a new stream per operation.
struct Appender {
    target: Target,
    n: u64,
}

impl Op for Appender {
    async fn run(&mut self) -> Result<u64> {
        self.n += 1;
        let id = Uuid::now_v7();
        let metadata = Metadata::new().with_correlation_id(id).with_causation_id(id);
        let event = NewEvent::from_domain(&AccountEvent::from(opened(self.n)), metadata)?;
        let request = AppendRequest::new(new_account()?, ExpectedVersion::NoStream, vec![event]);
        Ok(self.target.append(request).await?.appended())
    }
}

/// One page of the log per operation, starting over at the end.
struct Reader {
    target: Target,
    after: LogPosition,
}

impl Op for Reader {
    async fn run(&mut self) -> Result<u64> {
        let page = self.target.read_log(self.after, PAGE).await?;
        self.after = match page.last() {
            Some(last) if page.len() == PAGE => last.position,
            _ => LogPosition::START,
        };
        Ok(page.len() as u64)
    }
}

/// Takes migration 1004 off the run's events table again: the table as it was before.
async fn strip_tenants(suite: &Suite<'_>) -> Result<()> {
    let s = suite.db.schema();
    for sql in [
        format!("DROP POLICY events_of_the_tenant ON \"{s}\".events"),
        format!("ALTER TABLE \"{s}\".events DISABLE ROW LEVEL SECURITY"),
        format!("DROP TRIGGER events_stream_tenant ON \"{s}\".events"),
        format!("DROP TRIGGER events_stream_tenants ON \"{s}\".events"),
        format!("ALTER TABLE \"{s}\".events DROP COLUMN tenant"),
    ] {
        sqlx::query(&format!("{} {sql}", crate::db::ADMIN)).execute(suite.db.admin()).await?;
    }
    Ok(())
}

impl Suite<'_> {
    /// T: see the module's documentation.
    pub(crate) async fn t(&mut self) -> Result<()> {
        let w = self.settings.profile_writers;
        let events = Counted::Ops("appends/s");
        let base = Figure::new("T-append-pre1004", events, self.tenant_appends(w, None, true).await?);
        let plain = Figure::new("T-append-untenanted", events, self.tenant_appends(w, None, false).await?);
        let tenant = Figure::new("T-append-tenant", events, self.tenant_appends(w, Some("acme"), false).await?);
        let (plain, tenant) = (plain.against(&base), tenant.against(&base));
        self.report.figures.extend([base, plain, tenant]);

        let pages = Counted::Items("events/s");
        let (all, one) = self.tenant_reads(w).await?;
        let one = Figure::new("T-read-log-tenant", pages, one);
        let all = Figure::new("T-read-log", pages, all);
        let one = one.against(&all);
        self.report.figures.extend([all, one]);
        Ok(())
    }

    async fn tenant_appends(&self, writers: usize, tenant: Option<&str>, stripped: bool) -> Result<Sample> {
        let what = format!("T appends tenant {tenant:?} without 1004 {stripped}/w{writers}");
        let (tag, _) = self.setup(&what, writers, false).await?;
        if stripped {
            strip_tenants(self).await?;
        }
        let store = self.db.store(&tag, writers, true).await?;
        let target = match tenant {
            Some(t) => Target::Tenant(store.for_tenant(t)?),
            None => Target::Store(store.clone()),
        };
        let ops = (0..writers).map(|i| Appender { target: target.clone(), n: (i as u64) << 32 }).collect();
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        store.pool().close().await;
        sample
    }

    /// The whole log's pages, then one tenant's, from the same log.
    async fn tenant_reads(&self, writers: usize) -> Result<(Sample, Sample)> {
        let (tag, _) = self.setup(&format!("T reads/w{writers}"), writers, false).await?;
        let store = self.db.store(&tag, writers, true).await?;
        let views = [store.for_tenant("acme")?, store.for_tenant("globex")?];
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16usize {
            let view = views[t % 2].clone();
            tasks.spawn(async move {
                let mut last = None;
                for i in 0..LOG_EVENTS / 16 {
                    let n = (t * LOG_EVENTS + i) as u64;
                    let event = NewEvent::from_domain(&AccountEvent::from(opened(n)), Metadata::new())?;
                    let request = AppendRequest::new(new_account()?, ExpectedVersion::NoStream, vec![event]);
                    last = last.max(view.append(request).await?.last_position);
                }
                anyhow::Ok(last)
            });
        }
        let mut last = None;
        while let Some(done) = tasks.join_next().await {
            last = last.max(done??);
        }
        // Every event readable before reading starts (another transaction on the server may
        // hold the log's horizon back for a moment).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while store.log_head().await? < last {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the seeded log did not become readable");
            let head = store.log_head().await?.unwrap_or(LogPosition::START);
            store.wait_for_log(head, std::time::Duration::from_millis(500)).await?;
        }
        let readers = |target: Target| {
            (0..writers).map(|_| Reader { target: target.clone(), after: LogPosition::START }).collect()
        };
        let all = measure(self.db, &tag, self.plan(), readers(Target::Store(store.clone()))).await?;
        let one = measure(self.db, &tag, self.plan(), readers(Target::Tenant(views[0].clone()))).await?;
        store.pool().close().await;
        Ok((all, one))
    }
}

//! F5: rebuild of a projection from the PostgreSQL log (`ProjectionRunner::rebuild`: shadow
//! schema, pages of the log, swap), next to a raw baseline doing the same work by hand:
//! keyset pages of the log read through the store, each page's rows upserted in one
//! transaction into a plain table.

use std::time::Duration;

use anyhow::{Context as _, Result};
use tidemark::{EventStore, LogPosition};
use tidemark_projections::{InProcessBus, ProjectionRunner, RebuildOptions, RebuildOutcome, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tokio::time::Instant;

use crate::cpu::{nats_server_ticks, CpuMark};
use crate::figure::{Counted, Figure};
use crate::live_projection::{DEPOSIT, STREAM_LENGTH};
use crate::read_model::{create_sql, upsert_sql, verify, Rows, TotalsProjection, TABLE};
use crate::relay::{sample, usage};
use crate::runner::histogram;
use crate::scenarios::Suite;

/// Events per page, the rebuild's default.
const PAGE: usize = 5_000;

impl Suite<'_> {
    /// F5: seeds the log, then times the raw baseline and the framework's rebuild.
    pub(crate) async fn f5(&mut self) -> Result<()> {
        let (accounts, events) = self.store_accounts("F5", self.settings.f5_events).await?;
        self.db.settle(self.settings.quiet_wait).await;
        let raw = self.f5_raw(events, accounts).await?;
        self.db.settle(self.settings.quiet_wait).await;
        let framework = self.f5_framework(events, accounts).await?.against(&raw);
        self.report.figures.extend([framework, raw]);
        Ok(())
    }

    async fn f5_raw(&self, events: u64, accounts: usize) -> Result<Figure> {
        let tag = self.db.next_tag();
        let store = self.db.store(&tag, 2, false).await?;
        let table = format!("{}.f5_raw", self.db.schema());
        sqlx::query(&create_sql(&table)).execute(self.db.admin()).await?;
        let upsert = upsert_sql(&table);
        eprintln!("measuring F5 raw: pages of {PAGE} from the log, one upsert transaction each");
        let (cpu, nats) = (CpuMark::take(self.db, &tag).await, nats_server_ticks());
        let started = Instant::now();
        let mut after = LogPosition::START;
        let mut read = 0u64;
        loop {
            let page = store.read_log(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            read += page.len() as u64;
            let mut rows = Rows::default();
            for e in &page {
                let amount: serde_json::Value = serde_json::from_str(e.payload.get())?;
                rows.add(e.stream_id.as_str(), e.stream_version.0, amount["amount_cents"].as_i64().unwrap_or(0));
            }
            let mut tx = store.pool().begin().await?;
            rows.upsert(&upsert, &mut *tx).await?;
            tx.commit().await?;
        }
        let elapsed = started.elapsed();
        let (cpu, _) = usage(cpu, &CpuMark::take(self.db, &tag).await, nats, elapsed);
        anyhow::ensure!(read == events, "the raw reader read {read} of {events} events");
        store.pool().close().await;
        verify(self.db.admin(), &table, accounts, STREAM_LENGTH, DEPOSIT).await?;
        Ok(Figure::new("raw-rebuild", Counted::Items("events/s"), sample(events, elapsed, histogram()?, cpu)))
    }

    async fn f5_framework(&self, events: u64, accounts: usize) -> Result<Figure> {
        let tag = self.db.next_tag();
        let store = self.db.store(&tag, 4, false).await?;
        let read_models = PgReadModels::new(&store);
        let projection = TotalsProjection::new("f5_totals")?;
        let table = format!("\"{}\".{TABLE}", read_models.projection_schema("f5_totals"));
        // The rebuild reads the log, not a feed: an idle in-process bus stands in for one.
        let bus = InProcessBus::new(1)?;
        let runner = ProjectionRunner::new(projection, read_models, store.clone(), bus, RunnerConfig::default())?;
        eprintln!("measuring F5 framework: ProjectionRunner::rebuild, pages of {PAGE}");
        let cpu = CpuMark::take(self.db, &tag).await;
        let nats = nats_server_ticks();
        let started = Instant::now();
        let mut last_line = Instant::now();
        let outcome = runner
            .rebuild(RebuildOptions::default().batch_size(PAGE), &mut |p| {
                if last_line.elapsed() >= Duration::from_secs(5) {
                    last_line = Instant::now();
                    eprintln!("  F5: {} events, {:.0} events/s", p.events, p.rate());
                }
            })
            .await
            .context("the rebuild")?;
        let elapsed = started.elapsed();
        let (cpu, _) = usage(cpu, &CpuMark::take(self.db, &tag).await, nats, elapsed);
        anyhow::ensure!(
            matches!(outcome, RebuildOutcome::Completed { events: e, .. } if e == events),
            "the rebuild ended with {outcome:?}, expected {events} events"
        );
        store.pool().close().await;
        verify(self.db.admin(), &table, accounts, STREAM_LENGTH, DEPOSIT).await?;
        Ok(Figure::new("F5", Counted::Items("events/s"), sample(events, elapsed, histogram()?, cpu)))
    }
}

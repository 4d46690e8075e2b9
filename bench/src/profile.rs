//! Where a command's time goes: statements (round trips) sent by the client, and what
//! the server did per command (transactions, rows, index scans, buffers, WAL), from
//! PostgreSQL's cumulative statistics before and after one F1 measurement.
//!
//! `pg_stat_statements` is usually not loaded, so the counts come from sqlx's query
//! log (client side) and `pg_stat_database` / `pg_stat_user_tables` deltas (server
//! side; backends flush them when they exit, so the pool is closed before reading).

use std::time::Duration;

use anyhow::Result;
use sqlx::Row;

use crate::db::{BenchDb, ADMIN};
use crate::framework::{command_writers, Tuning, Work};
use crate::report::ProfileLine;
use crate::runner::{measure, Sample};
use crate::scenarios::Suite;
use crate::statements;

/// Cumulative server counters.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    values: [i64; 10],
}

const NAMES: [(&str, &str); 10] = [
    ("server_transactions_per_cmd", "xact"),
    ("server_rollbacks_per_cmd", "xact"),
    ("rows_inserted_per_cmd (database)", "rows"),
    ("rows_returned_per_cmd (database)", "rows"),
    ("rows_fetched_per_cmd (database)", "rows"),
    ("buffer_accesses_per_cmd (database)", "blocks"),
    ("index_scans_on_events_per_cmd", "scans"),
    ("seq_scans_on_events_per_cmd", "scans"),
    ("rows_inserted_into_events_per_cmd", "rows"),
    ("wal_bytes_per_cmd (cluster)", "bytes"),
];

impl Counters {
    async fn read(db: &BenchDb) -> Result<Self> {
        let sql = format!(
            "{ADMIN} SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_returned, d.tup_fetched, \
                    d.blks_hit + d.blks_read, coalesce(t.idx_scan, 0), t.seq_scan, t.n_tup_ins, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint \
             FROM pg_stat_database d, pg_stat_user_tables t \
             WHERE d.datname = current_database() AND t.schemaname = $1 AND t.relname = 'events'"
        );
        let row = sqlx::query(&sql).bind(db.schema()).fetch_one(db.admin()).await?;
        let mut values = [0; 10];
        for (i, v) in values.iter_mut().enumerate() {
            *v = row.try_get(i)?;
        }
        Ok(Self { values })
    }
}

impl Suite<'_> {
    /// Profiles F1 on new and on existing streams at the profile writer count (with
    /// `--quick`, only the defaults).
    pub(crate) async fn profile(&mut self) -> Result<()> {
        let w = self.settings.profile_writers;
        let all = [
            ("F1-new-plain", Work::Open, Tuning::Plain),
            ("F1-new", Work::Open, Tuning::Default),
            ("F1-new-nogc", Work::Open, Tuning::NoGroupCommit),
            ("F1-existing-plain", Work::Busy, Tuning::Plain),
            ("F1-existing", Work::Busy, Tuning::Default),
            ("F1-existing-nogc", Work::Busy, Tuning::NoGroupCommit),
        ];
        let defaults_only = self.settings.profile_defaults_only;
        for (series, work, tuning) in all.into_iter().filter(|(_, _, t)| !defaults_only || *t == Tuning::Default) {
            self.profile_one(&format!("{series}/w{w}"), w, work, tuning).await?;
        }
        Ok(())
    }

    async fn profile_one(&mut self, scenario: &str, writers: usize, work: Work, tuning: Tuning) -> Result<()> {
        let (tag, hands) = self.setup(&format!("profile {scenario}"), writers, work == Work::Busy).await?;
        let store = self.db.store(&tag, writers, tuning.group_commit()).await?;
        let ops = command_writers(&store, work, tuning, hands)?;
        self.wait_for_backends(&tag).await;
        let before = Counters::read(self.db).await?;
        statements::start();
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        let sent = statements::stop();
        store.pool().close().await;
        let sample = sample?;
        self.wait_for_backends("").await;
        let after = Counters::read(self.db).await?;
        let cmds = sample.total_ops.max(1) as f64;
        let mut push = |metric: String, value: f64, unit: &'static str| {
            self.report.profile.push(ProfileLine { scenario: format!("profile/{scenario}"), metric, value, unit });
        };
        push("commands_measured (warm-up and window)".into(), cmds, "cmd");
        let sent: Vec<_> = sent.into_iter().filter(|(summary, _)| !summary.starts_with(ADMIN)).collect();
        let total: u64 = sent.iter().map(|(_, n)| n).sum();
        push("client_statements_per_cmd (= round trips)".into(), total as f64 / cmds, "stmt");
        for (summary, n) in &sent {
            push(format!("  of which `{summary}`"), *n as f64 / cmds, "stmt");
        }
        for (i, (name, unit)) in NAMES.iter().enumerate() {
            push((*name).into(), (after.values[i] - before.values[i]) as f64 / cmds, unit);
        }
        cpu_lines(&sample, &mut push);
        Ok(())
    }

    /// Backends flush their statistics when they exit: wait until the run's are gone,
    /// but those of `keep`.
    async fn wait_for_backends(&self, keep: &str) {
        let pattern = format!("tmb-{}-%", self.db.schema());
        for _ in 0..50 {
            let sql = format!("{ADMIN} SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 AND application_name <> $2");
            let left: Result<i64, _> =
                sqlx::query_scalar(&sql).bind(&pattern).bind(keep).fetch_one(self.db.admin()).await;
            if left.map_or(true, |n| n == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Pending statistics are flushed at exit, just before the backend leaves pg_stat_activity.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cpu_lines(sample: &Sample, push: &mut impl FnMut(String, f64, &'static str)) {
    let (client, server) = sample.cpu_us_per_op();
    push("client_cpu_per_cmd (window)".into(), client, "us");
    push("server_backend_cpu_per_cmd (window)".into(), server, "us");
    push("machine_busy (window)".into(), sample.cpu.machine_busy * 100.0, "%");
    push("  of which neither client nor server backends (window)".into(), sample.cpu.other * 100.0, "%");
    push("throughput (window)".into(), sample.ops_per_s(), "cmd/s");
    push("latency_p50".into(), sample.latency_ms(0.5), "ms");
    push("latency_p99".into(), sample.latency_ms(0.99), "ms");
}

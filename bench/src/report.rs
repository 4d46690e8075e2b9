//! Output: a human-readable table, or one JSON object per line.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::FOREIGN_LOAD_LIMIT;
use crate::figure::Figure;

/// Series of the table, and what each measures.
const LEGEND: [(&str, &str); 29] = [
    ("raw-a", "(a) sqlx single-row INSERT, autocommit: 1 statement per op"),
    ("raw-b", "(b) sqlx BEGIN; INSERT; COMMIT: 3 statements per op"),
    ("raw-c", "(c) sqlx INSERT ... SELECT FROM unnest(...) of 100 rows per op"),
    ("append-new", "EventStore::append of 1 event, ExpectedVersion::Exact, new stream, no group commit"),
    ("append-existing", "EventStore::append of 1 event, ExpectedVersion::Exact, seeded stream, no group commit"),
    ("F1-new", "CommandHandler::handle, defaults (cache, creates_stream, group commit): open an account"),
    ("F1-existing", "CommandHandler::handle, defaults: deposit/withdraw on a seeded account"),
    ("F2", "CommandHandler::handle, defaults: import an account, 100 events in one append"),
    ("*-nogc", "the defaults without group commit"),
    ("*-idem", "the defaults, each command with a fresh command id (idempotent; recorded with its events)"),
    ("*-plain", "no state cache, no creates_stream shortcut, no group commit: load before every decide"),
    ("raw-js", "async-nats JetStream publish of stored events, relay's subjects/headers/payload, 1024 PubAcks out"),
    ("F3-drain", "NatsRelay (defaults) from start until status() has every pre-stored event acked"),
    ("F3-lag", "appends at a fixed rate, relay running; p50/p99 = append returned -> message on a subscription"),
    ("F4", "ProjectionRunner, JetStreamFeed -> PgReadModels, 1 UNNEST upsert per batch; w = partitions"),
    ("raw-upsert", "async-nats pull + sqlx: the same upsert per batch in BEGIN/COMMIT, then ack each; w = partitions"),
    ("raw-upsert-noack", "raw-upsert on ephemeral consumers without acks (as the runner consumes); w = partitions"),
    ("raw-pull", "async-nats pull consumers that only ack each message; w = partitions"),
    ("raw-pull-noack", "async-nats pull consumers without acks that only take each message in; w = partitions"),
    ("", "F4/raw-*: from start until every pre-published event is applied (acked for raw-pull)"),
    (
        "F5",
        "ProjectionRunner::rebuild of the F4 read model from the PostgreSQL log: shadow schema, pages of 5000, swap",
    ),
    ("raw-rebuild", "store.read_log pages of 5000, each page's rows upserted in one BEGIN/COMMIT into a plain table"),
    ("F6@N%", "PgEventStore::append -> NatsRelay -> JetStream -> ProjectionRunner -> read-model row visible"),
    ("raw-e2e@N%", "sqlx INSERT -> NOTIFY -> LISTEN-woken reader -> JetStream publish -> pull -> upsert -> visible"),
    ("", "F6: open loop at N% of F1-new/w32 (or N/s with --f6-rates); latency from the scheduled send to the row's NOTIFY; w = partitions"),
    ("cqrs-*", "P: cqrs-es 0.5 + postgres-es 0.5 (their tables, own schema), the same aggregate and commands"),
    ("M_*", "RSS of the whole bench process during F3-drain (relay) and F4 (runner), from /proc/self/status"),
    ("", "ratios: this figure's rate / the baseline's rate at the same writer count"),
    ("", "other: machine share used by neither the client nor its backends; '!': over 10%, figure disturbed"),
];

/// A figure of the profile: per-command counts and costs.
#[derive(Debug, Clone)]
pub struct ProfileLine {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub profile: Vec<ProfileLine>,
    /// Scenarios this build cannot run: (id, what it measures and what it needs).
    pub not_landed: Vec<(&'static str, &'static str)>,
}

/// One JSON line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    scenario: &'a str,
    metric: &'a str,
    value: Option<f64>,
    unit: Option<&'a str>,
    baseline: Option<&'a str>,
    ratio: Option<f64>,
}

impl<'a> Line<'a> {
    fn plain(scenario: &'a str, metric: &'a str, value: f64, unit: &'a str) -> Self {
        Self { scenario, metric, value: Some(round(value)), unit: Some(unit), baseline: None, ratio: None }
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Report {
    /// One JSON object per line.
    pub fn json(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut push = |line: Line<'_>| -> anyhow::Result<()> {
            out.push_str(&serde_json::to_string(&line)?);
            out.push('\n');
            Ok(())
        };
        for f in &self.figures {
            let id = f.id();
            let throughput = Line::plain(&id, "throughput", f.throughput(), f.unit());
            if f.baselines.is_empty() {
                push(throughput)?;
            }
            for (baseline, ratio) in f.ratios() {
                push(Line {
                    baseline: Some(baseline),
                    ratio: Some(round(ratio)),
                    ..Line::plain(&id, "throughput", f.throughput(), f.unit())
                })?;
            }
            push(Line::plain(&id, "latency_p50", f.sample.latency_ms(0.5), "ms"))?;
            push(Line::plain(&id, "latency_p99", f.sample.latency_ms(0.99), "ms"))?;
            let (client, server) = f.sample.cpu_us_per_op();
            push(Line::plain(&id, "client_cpu_per_op", client, "us"))?;
            push(Line::plain(&id, "server_cpu_per_op", server, "us"))?;
            push(Line::plain(&id, "machine_busy", f.sample.cpu.machine_busy * 100.0, "%"))?;
            push(Line::plain(&id, "machine_busy_other", f.sample.cpu.other * 100.0, "%"))?;
            for (metric, value, unit) in &f.extra {
                push(Line::plain(&id, metric, *value, unit))?;
            }
        }
        for p in &self.profile {
            push(Line::plain(&p.scenario, &p.metric, p.value, p.unit))?;
        }
        for (id, _) in &self.not_landed {
            push(Line { scenario: id, metric: "not_run", value: None, unit: None, baseline: None, ratio: None })?;
        }
        Ok(out)
    }

    /// The human-readable table, then targets, profile and scenarios not landed.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (series, what) in LEGEND {
            let _ = writeln!(out, "{series:<17} {what}");
        }
        let _ = writeln!(
            out,
            "\n{:<17} {:>3} {:>8} {:<9} {:>6} {:>6} {:>7} {:>7} {:>5} {:>5}  vs baseline",
            "scenario", "w", "rate", "unit", "p50 ms", "p99 ms", "cli us", "srv us", "busy", "other"
        );
        for f in &self.figures {
            let (client, server) = f.sample.cpu_us_per_op();
            let ratios: Vec<String> = f.ratios().map(|(b, r)| format!("{r:.2}x {}", series_of(b))).collect();
            let _ = writeln!(
                out,
                "{:<17} {:>3} {:>8.0} {:<9} {:>6.2} {:>6.2} {:>7.0} {:>7.0} {:>4.0}% {:>4.0}%{} {}",
                f.series,
                f.sample.writers,
                f.throughput(),
                f.unit(),
                f.sample.latency_ms(0.5),
                f.sample.latency_ms(0.99),
                client,
                server,
                f.sample.cpu.machine_busy * 100.0,
                f.sample.cpu.other * 100.0,
                if f.sample.cpu.other > FOREIGN_LOAD_LIMIT { "!" } else { " " },
                ratios.join(", ")
            );
            for (metric, value, unit) in &f.extra {
                let _ = writeln!(out, "{:<22} {metric} = {value:.1} {unit}", "");
            }
        }
        self.targets(&mut out);
        self.profile_table(&mut out);
        for (id, what) in &self.not_landed {
            let _ = writeln!(out, "{id:<4} not run: {what}");
        }
        out
    }

    fn targets(&self, out: &mut String) {
        let checked = self
            .figures
            .iter()
            .filter(|f| (f.series.starts_with("F1") && f.sample.writers == 32) || f.series.starts_with("F2"));
        let mut lines = Vec::new();
        for f in checked {
            for (baseline, ratio) in f.ratios() {
                // P: tidemark at least twice cqrs-es; F1/F2: at least 0.8x the raw baselines.
                let target = if baseline.starts_with("cqrs") { 2.0 } else { 0.8 };
                let verdict = if ratio >= target { "met" } else { "missed" };
                lines.push(format!("  {} vs {baseline}: {ratio:.2}x (target {target:.2}x) {verdict}", f.id()));
            }
        }
        for f in self.figures.iter().filter(|f| f.series.starts_with("F3")) {
            lines.extend(relay_targets(f));
        }
        for f in self.figures.iter().filter(|f| f.series == "F4") {
            lines.extend(projection_targets(f));
        }
        for f in &self.figures {
            lines.extend(e2e_targets(f));
        }
        if !lines.is_empty() {
            let _ = writeln!(out, "\ntargets:\n{}", lines.join("\n"));
        }
    }

    fn profile_table(&self, out: &mut String) {
        let mut current = "";
        for p in &self.profile {
            if p.scenario != current {
                current = &p.scenario;
                let _ = writeln!(out, "\nprofile {current}:");
            }
            let _ = writeln!(out, "  {:<58} {:>10.2} {}", p.metric, p.value, p.unit);
        }
        if !self.profile.is_empty() {
            out.push('\n');
        }
    }
}

/// F6's target (p50 at most 3 ms, p99 at most 15 ms) holds at 10 % of the F1 capacity; the
/// raw pipeline is held to it as well, so that the table shows whether the machine allows it.
/// At 1 % (the lowest default share) the p50 is this machine's floor: a pipeline that misses
/// 3 ms there cannot meet the target at any load.
fn e2e_targets(f: &Figure) -> Vec<String> {
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let at = |share: &str| f.series.strip_prefix("F6").or(f.series.strip_prefix("raw-e2e")) == Some(share);
    let (p50, p99) = (f.sample.latency_ms(0.5), f.sample.latency_ms(0.99));
    if at("@10%") {
        vec![
            format!("  {} p50: {p50:.2} ms (target 3 ms) {}", f.id(), verdict(p50 <= 3.0)),
            format!("  {} p99: {p99:.2} ms (target 15 ms) {}", f.id(), verdict(p99 <= 15.0)),
        ]
    } else if at("@1%") {
        let reach = if p50 <= 3.0 { "within reach" } else { "out of reach on this machine" };
        vec![format!("  {} p50: {p50:.2} ms (floor at 1 %: the 3 ms target is {reach})", f.id())]
    } else {
        Vec::new()
    }
}

/// F3's targets: drain at least 50k events/s and 0.7x the raw publish; lag p99 at most 10 ms.
fn relay_targets(f: &Figure) -> Vec<String> {
    let verdict = |met: bool| if met { "met" } else { "missed" };
    match f.series {
        "F3-drain" => {
            let rate = f.throughput();
            let mut lines =
                vec![format!("  {}: {rate:.0} events/s (target 50000) {}", f.id(), verdict(rate >= 50_000.0))];
            for (baseline, ratio) in f.ratios() {
                lines.push(format!("  {} vs {baseline}: {ratio:.2}x (target 0.70x) {}", f.id(), verdict(ratio >= 0.7)));
            }
            lines
        }
        "F3-lag" => {
            let p99 = f.sample.latency_ms(0.99);
            vec![format!("  {} p99: {p99:.2} ms (target 10 ms) {}", f.id(), verdict(p99 <= 10.0))]
        }
        _ => Vec::new(),
    }
}

/// F4's targets: at least 50k events/s on one partition, and at least 0.9x the hand-written
/// pipeline that consumes the same way (`raw-upsert-noack`); the other ratios are reported,
/// not judged.
fn projection_targets(f: &Figure) -> Vec<String> {
    let rate = f.throughput();
    let mut lines = Vec::new();
    if f.sample.writers == 1 {
        let verdict = if rate >= 50_000.0 { "met" } else { "missed" };
        lines.push(format!("  {}: {rate:.0} events/s (target 50000) {verdict}", f.id()));
    }
    for (baseline, ratio) in f.ratios() {
        if series_of(baseline) == "raw-upsert-noack" {
            let verdict = if ratio >= 0.9 { "met" } else { "missed" };
            lines.push(format!("  {} vs {baseline}: {ratio:.2}x (target 0.90x) {verdict}", f.id()));
        } else {
            lines.push(format!("  {} vs {baseline}: {ratio:.2}x (no target)", f.id()));
        }
    }
    lines
}

fn series_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cpu::CpuUsage;
    use crate::figure::Counted;
    use crate::runner::{histogram, Sample};

    /// A figure of `series` whose every latency is `ms` milliseconds (reported to the
    /// histogram's precision: 20 ms reads 20.02).
    fn e2e(series: &'static str, ms: u64) -> Figure {
        let mut latency = histogram().expect("histogram");
        latency.record_n(ms * 1000, 100).expect("record");
        let sample = Sample {
            writers: 4,
            ops: 100,
            items: 100,
            window: Duration::from_secs(1),
            latency,
            total_ops: 100,
            cpu: CpuUsage::default(),
        };
        Figure::new(series, Counted::Items("events/s"), sample)
    }

    #[test]
    fn both_pipelines_are_judged_at_ten_percent_and_the_floor_at_one() {
        let report = Report {
            figures: vec![
                e2e("F6@1%", 5),
                e2e("raw-e2e@1%", 2),
                e2e("F6@10%", 20),
                e2e("raw-e2e@10%", 2),
                e2e("F6@50%", 1),
            ],
            ..Report::default()
        };
        let mut out = String::new();
        report.targets(&mut out);
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
        assert_eq!(
            lines,
            [
                "  F6@1%/w4 p50: 5.00 ms (floor at 1 %: the 3 ms target is out of reach on this machine)",
                "  raw-e2e@1%/w4 p50: 2.00 ms (floor at 1 %: the 3 ms target is within reach)",
                "  F6@10%/w4 p50: 20.02 ms (target 3 ms) missed",
                "  F6@10%/w4 p99: 20.02 ms (target 15 ms) missed",
                "  raw-e2e@10%/w4 p50: 2.00 ms (target 3 ms) met",
                "  raw-e2e@10%/w4 p99: 2.00 ms (target 15 ms) met",
            ]
        );
    }
}

//! Output: a human-readable table, or one JSON object per line.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::FOREIGN_LOAD_LIMIT;
use crate::figure::Figure;
use crate::targets::{series_of, Judgement, Measure, Verdict};

/// Series of the table, and what each measures.
const LEGEND: [(&str, &str); 35] = [
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
    ("F4-pgfeed", "F4's runner on PgLogFeed: every partition reads the whole PostgreSQL log, no NATS; w = partitions"),
    ("F4-process", "F4's runner in a process of its own (for M; no CPU or latency figures); w = partitions"),
    ("raw-upsert", "async-nats pull + sqlx: the same upsert per batch in BEGIN/COMMIT, then ack each; w = partitions"),
    ("raw-upsert-noack", "raw-upsert on ephemeral consumers without acks (as the runner consumes); w = partitions"),
    ("raw-pull", "async-nats pull consumers that only ack each message; w = partitions"),
    ("raw-pull-noack", "async-nats pull consumers without acks that only take each message in; w = partitions"),
    ("raw-lag", "async-nats JetStream publish at F3-lag's rate; p50/p99 = publish called -> message on a subscription"),
    ("", "F4/raw-*: from start until every pre-published event is applied (acked for raw-pull)"),
    (
        "F5",
        "ProjectionRunner::rebuild of the F4 read model from the PostgreSQL log: shadow schema, pages of 5000, swap",
    ),
    ("raw-rebuild", "store.read_log pages of 5000, each page's rows upserted in one BEGIN/COMMIT into a plain table"),
    ("F6@N%", "PgEventStore::append -> NatsRelay -> JetStream -> ProjectionRunner -> read-model row visible"),
    ("F6-pgfeed@N%", "PgEventStore::append -> PgLogFeed (NOTIFY-woken log reads) -> ProjectionRunner -> row visible"),
    ("raw-e2e@N%", "sqlx INSERT -> NOTIFY -> LISTEN-woken reader -> JetStream publish -> pull -> upsert -> visible"),
    ("", "F6: open loop at N% of F1-new/w32 (or N/s with --f6-rates); latency from the scheduled send to the row's NOTIFY; w = partitions"),
    ("cqrs-*", "P: cqrs-es 0.5 + postgres-es 0.5 (their tables, own schema), the same aggregate and commands"),
    ("M_*", "memory (/proc/<pid>/status): M_peak_rss = VmHWM of the bench process, reset as F3-drain / F4 starts, or of F4-process's own process"),
    ("T-append-*", "T: EventStore::append of 1 event to a new stream, group commit; -pre1004: migration 1004 taken off the table; -tenant: through PgEventStore::for_tenant"),
    ("T-read-log*", "T: read_log pages of 100 from a log of 20,000 events of two tenants; -tenant: one tenant's pages through its view"),
    ("", "ratios: this figure's rate / the baseline's rate at the same writer count"),
    ("", "other: machine share used by neither the client nor its backends; '!': over 10%, figure disturbed"),
];

/// A figure of the profile: per-command counts and costs.
#[derive(Debug, Clone)]
pub(crate) struct ProfileLine {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub figures: Vec<Figure>,
    pub profile: Vec<ProfileLine>,
    /// Scenarios this build cannot run: (id, what it measures and what it needs).
    pub not_landed: Vec<(&'static str, &'static str)>,
    /// Scenarios that failed: (id, the error).
    pub crashed: Vec<(&'static str, String)>,
}

/// One JSON line. `kind` is `figure` (a figure's own metric), `ratio` (a figure against a
/// baseline), `target` (a target's verdict), `profile`, `not_run` or `crashed`.
#[derive(Debug, Serialize)]
struct Line<'a> {
    kind: &'a str,
    scenario: &'a str,
    variant: &'a str,
    writers: Option<usize>,
    id: &'a str,
    metric: &'a str,
    value: Option<f64>,
    unit: Option<&'a str>,
    higher_is_better: Option<bool>,
    baseline: Option<&'a str>,
    ratio: Option<f64>,
    /// Whether a target judges this figure (or this ratio): a headline figure, not a
    /// diagnostic one.
    headline: bool,
    target: Option<f64>,
    met: Option<bool>,
    error: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn empty(kind: &'a str, scenario: &'a str) -> Self {
        Self {
            kind,
            scenario,
            variant: "",
            writers: None,
            id: "",
            metric: "",
            value: None,
            unit: None,
            higher_is_better: None,
            baseline: None,
            ratio: None,
            headline: false,
            target: None,
            met: None,
            error: None,
        }
    }

    fn of(f: &'a Figure, id: &'a str, metric: &'a str, value: f64, unit: &'a str) -> Self {
        Self {
            variant: f.series,
            writers: Some(f.sample.writers),
            id,
            metric,
            value: Some(round(value)),
            unit: Some(unit),
            higher_is_better: better(metric),
            ..Self::empty("figure", f.scenario)
        }
    }
}

/// Which way a metric is better, where it has one.
fn better(metric: &str) -> Option<bool> {
    match metric {
        "throughput" => Some(true),
        m if m.starts_with("latency") || m.ends_with("cpu_per_op") || m.starts_with("M_") => Some(false),
        m if m.ends_with("_p50") || m.ends_with("_p99") || m.starts_with("p99") => Some(false),
        _ => None,
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn push(out: &mut String, line: Line<'_>) -> anyhow::Result<()> {
    out.push_str(&serde_json::to_string(&line)?);
    out.push('\n');
    Ok(())
}

/// A figure's lines: its throughput, its ratios to each baseline, then its own metrics.
/// `judged` says whether a target judges the figure (against a given baseline, or any).
fn push_figure(out: &mut String, f: &Figure, judged: &dyn Fn(&Figure, Option<&str>) -> bool) -> anyhow::Result<()> {
    let id = f.id();
    let headline = judged(f, None);
    let line = |metric, value, unit| Line { headline, ..Line::of(f, &id, metric, value, unit) };
    push(out, line("throughput", f.throughput(), f.unit()))?;
    for (baseline, ratio) in f.ratios() {
        push(
            out,
            Line {
                kind: "ratio",
                baseline: Some(baseline),
                ratio: Some(round(ratio)),
                headline: judged(f, Some(baseline)),
                ..line("throughput", f.throughput(), f.unit())
            },
        )?;
    }
    for (baseline, p50, p99) in f.latency_ratios() {
        let headline = judged(f, Some(baseline));
        for (metric, ratio, value) in
            [("latency_p50", p50, f.sample.latency_ms(0.5)), ("latency_p99", p99, f.sample.latency_ms(0.99))]
        {
            let ratio = Some(round(ratio));
            push(out, Line { kind: "ratio", baseline: Some(baseline), ratio, headline, ..line(metric, value, "ms") })?;
        }
    }
    push(out, line("latency_p50", f.sample.latency_ms(0.5), "ms"))?;
    push(out, line("latency_p99", f.sample.latency_ms(0.99), "ms"))?;
    let (client, server) = f.sample.cpu_us_per_op();
    push(out, line("client_cpu_per_op", client, "us"))?;
    push(out, line("server_cpu_per_op", server, "us"))?;
    push(out, line("machine_busy", f.sample.cpu.machine_busy * 100.0, "%"))?;
    push(out, line("machine_busy_other", f.sample.cpu.other * 100.0, "%"))?;
    for (metric, value, unit) in &f.extra {
        push(out, line(metric, *value, unit))?;
    }
    Ok(())
}

/// A target's verdict as a line.
fn verdict_line(v: &Verdict) -> Line<'_> {
    let t = &v.target;
    Line {
        variant: t.series,
        writers: Some(v.writers),
        id: &v.figure,
        metric: t.measure.name(),
        value: Some(round(v.value)),
        unit: Some(t.unit),
        higher_is_better: Some(t.measure.higher_is_better()),
        baseline: v.baseline.as_deref(),
        ratio: t.baseline.is_some().then_some(round(v.value)),
        headline: true,
        target: Some(t.bound),
        met: Some(v.met),
        ..Line::empty("target", t.scenario)
    }
}

impl Report {
    /// The targets' verdicts on this run's figures.
    pub(crate) fn judgement(&self) -> Judgement {
        Judgement::of(&self.figures)
    }

    /// One JSON object per line.
    pub(crate) fn json(&self) -> anyhow::Result<String> {
        let judgement = self.judgement();
        let judged = |f: &Figure, baseline: Option<&str>| {
            judgement.verdicts.iter().any(|v| {
                v.figure == f.id()
                    && v.target.scenario_matches(f.scenario)
                    && (baseline.is_none() || v.baseline.as_deref() == baseline)
            })
        };
        let mut out = String::new();
        for f in &self.figures {
            push_figure(&mut out, f, &judged)?;
        }
        for v in &judgement.verdicts {
            push(&mut out, verdict_line(v))?;
        }
        for p in &self.profile {
            push(
                &mut out,
                Line {
                    variant: &p.scenario,
                    id: &p.scenario,
                    metric: &p.metric,
                    value: Some(round(p.value)),
                    unit: Some(p.unit),
                    ..Line::empty("profile", "profile")
                },
            )?;
        }
        for (id, _) in &self.not_landed {
            push(&mut out, Line { metric: "not_run", ..Line::empty("not_run", id) })?;
        }
        for (id, error) in &self.crashed {
            push(&mut out, Line { metric: "crashed", error: Some(error), ..Line::empty("crashed", id) })?;
        }
        Ok(out)
    }

    /// The human-readable table, then targets, profile and scenarios not landed.
    pub(crate) fn table(&self) -> String {
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
            let mut ratios: Vec<String> = f.ratios().map(|(b, r)| format!("{r:.2}x {}", series_of(b))).collect();
            ratios.extend(
                f.latency_ratios().map(|(b, p50, p99)| format!("p50 {p50:.2}x, p99 {p99:.2}x {}", series_of(b))),
            );
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
        for (id, error) in &self.crashed {
            let _ = writeln!(out, "{id:<4} CRASHED: {error}");
        }
        out
    }

    fn targets(&self, out: &mut String) {
        let judgement = self.judgement();
        if judgement.verdicts.is_empty() {
            return;
        }
        let _ = writeln!(out, "\ntargets:");
        for v in &judgement.verdicts {
            let _ = writeln!(out, "  {v}");
        }
        for t in &judgement.unmeasured {
            let writers = t.writers.map(|w| format!("/w{w}")).unwrap_or_default();
            let what = match t.measure {
                Measure::Extra(metric) => metric.to_owned(),
                m => format!("{} vs {}", m.name(), t.baseline.unwrap_or("-")),
            };
            let _ = writeln!(out, "  {} {}{writers} {what}: not measured in this run", t.scenario, t.series);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{test_figure, Counted};

    fn figure(series: &'static str, writers: usize, per_s: u64) -> Figure {
        test_figure(series, Counted::Ops("cmd/s"), writers, per_s, 1)
    }

    fn lines(report: &Report) -> Vec<serde_json::Value> {
        let json = report.json().expect("json");
        json.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    #[test]
    fn json_lines_name_scenario_variant_writers_direction_baseline_and_headline() {
        let raw = figure("raw-a", 32, 1000);
        let report = Report {
            figures: vec![
                figure("F1-new", 32, 3000).against(&raw),
                figure("F1-existing-plain", 32, 300).against(&raw),
                raw,
            ],
            crashed: vec![("F3", "connection refused".into())],
            ..Report::default()
        };
        let lines = lines(&report);
        let find = |kind: &str, id: &str, metric: &str| {
            lines
                .iter()
                .find(|l| l["kind"] == kind && l["id"] == id && l["metric"] == metric)
                .unwrap_or_else(|| panic!("no {kind} line {id} {metric}"))
                .clone()
        };
        let ratio = find("ratio", "F1-new/w32", "throughput");
        assert_eq!(ratio["scenario"], "F1");
        assert_eq!(ratio["variant"], "F1-new");
        assert_eq!(ratio["writers"], 32);
        assert_eq!(ratio["higher_is_better"], true);
        assert_eq!(ratio["baseline"], "raw-a/w32");
        assert_eq!(ratio["ratio"], 3.0);
        assert_eq!(ratio["headline"], true);
        // A diagnostic variant's ratio is not a headline figure: a check taking the
        // minimum of the headline ratios does not see it.
        let plain = find("ratio", "F1-existing-plain/w32", "throughput");
        assert_eq!(plain["headline"], false);
        assert_eq!(plain["ratio"], 0.3);
        assert_eq!(find("figure", "F1-new/w32", "latency_p99")["higher_is_better"], false);
        let target = find("target", "F1-new/w32", "throughput");
        assert_eq!(target["target"], 2.5);
        assert_eq!(target["met"], true);
        let crashed = lines.iter().find(|l| l["kind"] == "crashed").expect("a crashed line");
        assert_eq!(crashed["scenario"], "F3");
        assert_eq!(crashed["error"], "connection refused");
    }
}

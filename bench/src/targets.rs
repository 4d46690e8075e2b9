//! The suite's targets. Each is a bound on one figure, as a ratio to a baseline measured in
//! the same run (so it holds on any machine), or, for memory, in MiB.

use std::fmt;

use crate::figure::{Baseline, Figure};

/// What a target reads from a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Measure {
    /// The figure's throughput over the baseline's (higher is better).
    Throughput,
    /// The figure's time for the same work over the baseline's: the baseline's throughput
    /// over the figure's (lower is better).
    Time,
    /// The figure's p50 latency over the baseline's (lower is better).
    P50,
    /// The figure's p99 latency over the baseline's (lower is better).
    P99,
    /// One of the figure's further metrics, absolute (lower is better).
    Extra(&'static str),
}

impl Measure {
    pub(crate) fn higher_is_better(self) -> bool {
        matches!(self, Measure::Throughput)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Measure::Throughput => "throughput",
            Measure::Time => "time",
            Measure::P50 => "latency_p50",
            Measure::P99 => "latency_p99",
            Measure::Extra(metric) => metric,
        }
    }
}

/// One target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub scenario: &'static str,
    /// The figure's series, exactly.
    pub series: &'static str,
    /// The figure's writer (or partition) count; `None`: every count measured.
    pub writers: Option<usize>,
    pub measure: Measure,
    /// The baseline's series (at the figure's writer count); `None` for absolute bounds.
    pub baseline: Option<&'static str>,
    /// At least this (throughput) or at most this (the others).
    pub bound: f64,
    /// The unit of an absolute bound.
    pub unit: &'static str,
}

impl Target {
    /// Whether a figure of `scenario` is judged by this target (M judges F3's and F4's).
    pub(crate) fn scenario_matches(&self, scenario: &str) -> bool {
        self.scenario == scenario || (self.scenario == "M" && matches!(scenario, "F3" | "F4"))
    }
}

const fn ratio(scenario: &'static str, series: &'static str, writers: Option<usize>) -> Target {
    Target { scenario, series, writers, measure: Measure::Throughput, baseline: None, bound: 0.0, unit: "x" }
}

const fn vs(t: Target, measure: Measure, baseline: &'static str, bound: f64) -> Target {
    Target { measure, baseline: Some(baseline), bound, ..t }
}

const fn rss(series: &'static str) -> Target {
    Target {
        scenario: "M",
        series,
        writers: None,
        measure: Measure::Extra("M_peak_rss"),
        baseline: None,
        bound: 100.0,
        unit: "MiB",
    }
}

use Measure::{Throughput, Time, P50, P99};

/// Every target of the suite (issue 27's table).
pub(crate) const TARGETS: [Target; 19] = [
    vs(ratio("F1", "F1-new", Some(32)), Throughput, "raw-a", 2.5),
    vs(ratio("F1", "F1-existing", Some(32)), Throughput, "raw-a", 2.5),
    vs(ratio("F1", "F1-new", Some(1)), Throughput, "raw-a", 0.9),
    vs(ratio("F1", "F1-existing", Some(1)), Throughput, "raw-a", 0.9),
    vs(ratio("F2", "F2", Some(1)), Throughput, "raw-c", 0.9),
    vs(ratio("F2", "F2", Some(8)), Throughput, "raw-c", 0.9),
    vs(ratio("F3", "F3-drain", None), Throughput, "raw-js", 0.9),
    vs(ratio("F3", "F3-lag", None), P99, "raw-lag", 2.0),
    vs(ratio("F4", "F4", Some(1)), Throughput, "raw-upsert-noack", 0.9),
    vs(ratio("F5", "F5", None), Time, "raw-rebuild", 0.7),
    vs(ratio("F6", "F6@1%", None), P50, "raw-e2e@1%", 1.2),
    vs(ratio("F6", "F6@1%", None), P99, "raw-e2e@1%", 1.0),
    vs(ratio("F6", "F6@10%", None), P50, "raw-e2e@10%", 1.2),
    vs(ratio("F6", "F6@10%", None), P99, "raw-e2e@10%", 1.0),
    rss("F3-drain"),
    rss("F4-process"),
    vs(ratio("P", "F1-new", Some(32)), Throughput, "cqrs-F1-new", 2.0),
    vs(ratio("P", "F1-existing", Some(32)), Throughput, "cqrs-F1-existing", 2.0),
    vs(ratio("P", "F2", None), Throughput, "cqrs-F2", 2.0),
];

/// A target applied to one figure.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub target: Target,
    /// The figure's id (`<series>/w<writers>`) and the baseline's.
    pub figure: String,
    pub writers: usize,
    pub baseline: Option<String>,
    /// The ratio, or the absolute value.
    pub value: f64,
    pub met: bool,
}

impl Verdict {
    /// How far the value is from its bound, 1.0 on it: above 1 met, below 1 missed.
    pub(crate) fn score(&self) -> f64 {
        let (value, bound) = (self.value.max(1e-9), self.target.bound.max(1e-9));
        if self.target.measure.higher_is_better() {
            value / bound
        } else {
            bound / value
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        let (sign, verdict) = (if t.measure.higher_is_better() { ">=" } else { "<=" }, self.met_word());
        match &self.baseline {
            Some(baseline) => write!(
                f,
                "{} {} {} vs {baseline}: {:.2}x (target {sign} {:.2}x) {verdict}",
                t.scenario,
                self.figure,
                t.measure.name(),
                self.value,
                t.bound
            ),
            None => write!(
                f,
                "{} {} {}: {:.1} {} (target {sign} {:.0} {}) {verdict}",
                t.scenario,
                self.figure,
                t.measure.name(),
                self.value,
                t.unit,
                t.bound,
                t.unit
            ),
        }
    }
}

impl Verdict {
    fn met_word(&self) -> &'static str {
        if self.met {
            "met"
        } else {
            "missed"
        }
    }
}

/// What the targets found in a run.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    pub verdicts: Vec<Verdict>,
    /// Targets no figure of the run could be judged by (scenario not run, writer count
    /// not measured).
    pub unmeasured: Vec<Target>,
}

impl Judgement {
    pub(crate) fn of(figures: &[Figure]) -> Self {
        let mut judgement = Judgement::default();
        for target in TARGETS {
            let verdicts: Vec<Verdict> = figures.iter().filter_map(|f| judge(&target, f)).collect();
            if verdicts.is_empty() {
                judgement.unmeasured.push(target);
            }
            judgement.verdicts.extend(verdicts);
        }
        judgement
    }

    pub(crate) fn missed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(|v| !v.met)
    }

    /// The verdict furthest below (or least above) its bound.
    pub(crate) fn worst(&self) -> Option<&Verdict> {
        self.verdicts.iter().min_by(|a, b| a.score().total_cmp(&b.score()))
    }
}

fn judge(target: &Target, figure: &Figure) -> Option<Verdict> {
    let writers = figure.sample.writers;
    let applies = figure.series == target.series
        && target.scenario_matches(figure.scenario)
        && target.writers.is_none_or(|w| w == writers);
    if !applies {
        return None;
    }
    let (value, baseline) = match target.baseline {
        None => {
            let Measure::Extra(metric) = target.measure else { return None };
            (figure.extra(metric)?, None)
        }
        Some(series) => {
            let b = figure.baselines.iter().find(|b| series_of(&b.id) == series)?;
            (compare(target.measure, figure, b)?, Some(b.id.clone()))
        }
    };
    let met = if target.measure.higher_is_better() { value >= target.bound } else { value <= target.bound };
    Some(Verdict { target: *target, figure: figure.id(), writers, baseline, value, met })
}

fn compare(measure: Measure, figure: &Figure, b: &Baseline) -> Option<f64> {
    let over = |mine: f64, theirs: f64| (theirs > 0.0).then(|| mine / theirs);
    match measure {
        Measure::Throughput => over(figure.throughput(), b.value),
        Measure::Time => over(b.value, figure.throughput()),
        Measure::P50 => over(figure.sample.latency_ms(0.5), b.p50_ms),
        Measure::P99 => over(figure.sample.latency_ms(0.99), b.p99_ms),
        Measure::Extra(_) => None,
    }
}

pub(crate) fn series_of(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{test_figure, Counted};

    /// A figure of `series` at `writers` with `per_s` items a second and every latency `ms`.
    fn figure(series: &'static str, writers: usize, per_s: u64, ms: u64) -> Figure {
        test_figure(series, Counted::Items("events/s"), writers, per_s, ms)
    }

    fn lines(judgement: &Judgement) -> Vec<String> {
        judgement.verdicts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn throughput_time_and_latency_targets_are_judged_against_their_baselines() {
        let raw_a = figure("raw-a", 32, 1000, 5);
        let raw_rebuild = figure("raw-rebuild", 1, 1000, 1);
        let raw_e2e = figure("raw-e2e@10%", 4, 100, 10);
        let figures = vec![
            figure("F1-new", 32, 2600, 5).against(&raw_a),
            figure("F1-existing", 32, 2000, 5).against(&raw_a),
            // The same work in 0.5 of the raw time: met.
            figure("F5", 1, 2000, 1).against(&raw_rebuild),
            figure("F6@10%", 4, 100, 12).against_latency(&raw_e2e),
        ];
        let judgement = Judgement::of(&figures);
        assert_eq!(
            lines(&judgement),
            [
                "F1 F1-new/w32 throughput vs raw-a/w32: 2.60x (target >= 2.50x) met",
                "F1 F1-existing/w32 throughput vs raw-a/w32: 2.00x (target >= 2.50x) missed",
                "F5 F5/w1 time vs raw-rebuild/w1: 0.50x (target <= 0.70x) met",
                "F6 F6@10%/w4 latency_p50 vs raw-e2e@10%/w4: 1.20x (target <= 1.20x) met",
                "F6 F6@10%/w4 latency_p99 vs raw-e2e@10%/w4: 1.20x (target <= 1.00x) missed",
            ]
        );
        let worst = judgement.worst().expect("a verdict");
        assert_eq!(worst.figure, "F1-existing/w32");
        assert_eq!(judgement.missed().count(), 2);
        // Everything else (F2, F3, F4, M, P, F1 at one writer) was not measured.
        assert_eq!(judgement.unmeasured.len(), TARGETS.len() - 5);
    }

    #[test]
    fn memory_is_judged_in_mib_and_p_only_against_cqrs() {
        let cqrs = figure("cqrs-F1-new", 32, 1000, 1);
        let figures = vec![
            figure("F4-process", 2, 1000, 1).with("M_peak_rss", 120.0, "MiB"),
            // The in-process runner's figure is the bench process's: a diagnostic only.
            figure("F4", 2, 1000, 1).with("M_peak_rss", 400.0, "MiB"),
            figure("F3-drain", 1, 1000, 1).with("M_peak_rss", 64.0, "MiB"),
            // P's F1-new is not judged against raw-a, nor F1's against cqrs-es.
            figure("F1-new", 32, 2500, 1).in_scenario("P").against(&cqrs),
        ];
        let judgement = Judgement::of(&figures);
        assert_eq!(
            lines(&judgement),
            [
                "M F3-drain/w1 M_peak_rss: 64.0 MiB (target <= 100 MiB) met",
                "M F4-process/w2 M_peak_rss: 120.0 MiB (target <= 100 MiB) missed",
                "P F1-new/w32 throughput vs cqrs-F1-new/w32: 2.50x (target >= 2.00x) met",
            ]
        );
        assert!(judgement.unmeasured.iter().any(|t| t.scenario == "F1" && t.series == "F1-new"));
    }
}

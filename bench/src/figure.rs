//! One reported figure: a measurement, its unit, and the baselines it is compared with.

use crate::runner::Sample;

/// What a figure counts per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Operations (commands, statements, appends): the unit names them.
    Ops(&'static str),
    /// Rows or events written: the unit names them.
    Items(&'static str),
}

/// A baseline a figure is compared with: its id, its throughput and its latencies.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    pub id: String,
    pub value: f64,
    /// The baseline's p50 and p99 latency in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Whether the figures are compared on latency (open-loop runs at the same rate, whose
    /// throughputs are equal by construction) rather than on throughput.
    pub on_latency: bool,
}

/// A measured figure, ready to print.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// The scenario the figure belongs to (`F1` … `F6`, `P`).
    pub scenario: &'static str,
    /// Short id of the series, e.g. `F1-new` or `raw-a` (see the table's legend).
    pub series: &'static str,
    pub sample: Sample,
    pub counted: Counted,
    pub baselines: Vec<Baseline>,
    /// Further figures: (metric, value, unit).
    pub extra: Vec<(&'static str, f64, &'static str)>,
}

impl Figure {
    pub(crate) fn new(series: &'static str, counted: Counted, sample: Sample) -> Self {
        Self { scenario: scenario_of(series), series, sample, counted, baselines: Vec::new(), extra: Vec::new() }
    }

    /// Files the figure under another scenario than its series suggests (P measures
    /// `F1-new` again beside cqrs-es).
    pub(crate) fn in_scenario(mut self, scenario: &'static str) -> Self {
        self.scenario = scenario;
        self
    }

    /// Compares this figure with another one's throughput.
    pub(crate) fn against(mut self, baseline: &Figure) -> Self {
        self.baselines.push(Baseline {
            id: baseline.id(),
            value: baseline.throughput(),
            p50_ms: baseline.sample.latency_ms(0.5),
            p99_ms: baseline.sample.latency_ms(0.99),
            on_latency: false,
        });
        self
    }

    /// Compares this figure with another one's latency (both ran open loop at one rate).
    pub(crate) fn against_latency(mut self, baseline: &Figure) -> Self {
        self = self.against(baseline);
        if let Some(last) = self.baselines.last_mut() {
            last.on_latency = true;
        }
        self
    }

    /// Adds a further metric.
    pub(crate) fn with(mut self, metric: &'static str, value: f64, unit: &'static str) -> Self {
        self.extra.push((metric, value, unit));
        self
    }

    /// `<series>/w<writers>`.
    pub(crate) fn id(&self) -> String {
        format!("{}/w{}", self.series, self.sample.writers)
    }

    pub(crate) fn throughput(&self) -> f64 {
        match self.counted {
            Counted::Ops(_) => self.sample.ops_per_s(),
            Counted::Items(_) => self.sample.items_per_s(),
        }
    }

    pub(crate) fn unit(&self) -> &'static str {
        match self.counted {
            Counted::Ops(u) | Counted::Items(u) => u,
        }
    }

    /// (baseline id, ratio of this figure's throughput to the baseline's), for the
    /// baselines compared on throughput.
    pub(crate) fn ratios(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        let mine = self.throughput();
        self.baselines
            .iter()
            .filter(|b| !b.on_latency)
            .map(move |b| (b.id.as_str(), if b.value > 0.0 { mine / b.value } else { 0.0 }))
    }

    /// (baseline id, p50 ratio, p99 ratio) for the baselines compared on latency.
    pub(crate) fn latency_ratios(&self) -> impl Iterator<Item = (&str, f64, f64)> + '_ {
        let (p50, p99) = (self.sample.latency_ms(0.5), self.sample.latency_ms(0.99));
        let ratio = |mine: f64, theirs: f64| if theirs > 0.0 { mine / theirs } else { 0.0 };
        self.baselines
            .iter()
            .filter(|b| b.on_latency)
            .map(move |b| (b.id.as_str(), ratio(p50, b.p50_ms), ratio(p99, b.p99_ms)))
    }

    /// A further metric by name.
    pub(crate) fn extra(&self, metric: &str) -> Option<f64> {
        self.extra.iter().find(|(m, _, _)| *m == metric).map(|(_, v, _)| *v)
    }
}

/// The scenario a series belongs to, by the series' name (see the legend).
pub(crate) fn scenario_of(series: &str) -> &'static str {
    const BY_PREFIX: [(&str, &str); 17] = [
        ("raw-a", "F1"),
        ("raw-b", "F1"),
        ("append-", "F1"),
        ("F1", "F1"),
        ("raw-c", "F2"),
        ("F2", "F2"),
        ("raw-js", "F3"),
        ("raw-lag", "F3"),
        ("F3", "F3"),
        ("raw-upsert", "F4"),
        ("raw-pull", "F4"),
        ("F4", "F4"),
        ("raw-rebuild", "F5"),
        ("F5", "F5"),
        ("raw-e2e", "F6"),
        ("cqrs-", "P"),
        ("T-", "T"),
    ];
    if series.starts_with("F6") {
        return "F6";
    }
    BY_PREFIX.iter().find(|(prefix, _)| series.starts_with(prefix)).map_or("other", |(_, scenario)| scenario)
}

/// A figure for tests: `per_s` operations (and items) in one second at `writers`, every
/// latency `ms` milliseconds.
#[cfg(test)]
pub(crate) fn test_figure(series: &'static str, counted: Counted, writers: usize, per_s: u64, ms: u64) -> Figure {
    let mut latency = crate::runner::histogram().expect("histogram");
    latency.record_n(ms * 1000, 100).expect("record");
    let sample = Sample {
        writers,
        ops: per_s,
        items: per_s,
        window: std::time::Duration::from_secs(1),
        latency,
        total_ops: per_s,
        cpu: crate::cpu::CpuUsage::default(),
    };
    Figure::new(series, counted, sample)
}

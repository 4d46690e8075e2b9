//! One reported figure: a measurement, its unit, and the baselines it is compared with.

use crate::runner::Sample;

/// What a figure counts per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Operations (commands, statements, appends): the unit names them.
    Ops(&'static str),
    /// Rows or events written: the unit names them.
    Items(&'static str),
}

/// A baseline a figure is compared with: its id and its throughput.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub id: String,
    pub value: f64,
}

/// A measured figure, ready to print.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Short id of the series, e.g. `F1-new` or `raw-a` (see the table's legend).
    pub series: &'static str,
    pub sample: Sample,
    pub counted: Counted,
    pub baselines: Vec<Baseline>,
    /// Further figures: (metric, value, unit).
    pub extra: Vec<(&'static str, f64, &'static str)>,
}

impl Figure {
    pub fn new(series: &'static str, counted: Counted, sample: Sample) -> Self {
        Self { series, sample, counted, baselines: Vec::new(), extra: Vec::new() }
    }

    /// Compares this figure with another one's throughput.
    pub fn against(mut self, baseline: &Figure) -> Self {
        self.baselines.push(Baseline { id: baseline.id(), value: baseline.throughput() });
        self
    }

    /// Adds a further metric.
    pub fn with(mut self, metric: &'static str, value: f64, unit: &'static str) -> Self {
        self.extra.push((metric, value, unit));
        self
    }

    /// `<series>/w<writers>`.
    pub fn id(&self) -> String {
        format!("{}/w{}", self.series, self.sample.writers)
    }

    pub fn throughput(&self) -> f64 {
        match self.counted {
            Counted::Ops(_) => self.sample.ops_per_s(),
            Counted::Items(_) => self.sample.items_per_s(),
        }
    }

    pub fn unit(&self) -> &'static str {
        match self.counted {
            Counted::Ops(u) | Counted::Items(u) => u,
        }
    }

    /// (baseline id, ratio of this figure's throughput to the baseline's).
    pub fn ratios(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        let mine = self.throughput();
        self.baselines.iter().map(move |b| (b.id.as_str(), if b.value > 0.0 { mine / b.value } else { 0.0 }))
    }
}

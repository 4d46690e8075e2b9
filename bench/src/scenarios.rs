//! The landed scenarios, each measured next to its raw baselines at the same writer count.

use std::cell::Cell;
use std::sync::Arc;

use anyhow::Result;
use tidemark::StreamId;

use crate::cli::Settings;
use crate::cpu::FOREIGN_LOAD_LIMIT;
use crate::db::BenchDb;
use crate::figure::{Counted, Figure};
use crate::framework::{command_writers, deal, seed, AppendWriter, Tuning, Work};
use crate::raw_inserts::{RawKind, RawWriter};
use crate::report::Report;
use crate::runner::{measure, Plan, Sample};

/// Events per F2 command and rows per raw UNNEST statement.
pub(crate) const BATCH: usize = 100;

/// Scenarios this build cannot run, and why.
#[cfg(not(feature = "cqrs-es"))]
pub(crate) const NOT_LANDED: &[(&str, &str)] =
    &[("P", "cqrs-es + postgres-es running the F1/F2 workload: needs --features cqrs-es")];
/// Scenarios this build cannot run, and why.
#[cfg(feature = "cqrs-es")]
pub(crate) const NOT_LANDED: &[(&str, &str)] = &[];

/// One kind of measurement.
#[derive(Debug, Clone, Copy)]
enum Job {
    Raw(RawKind),
    Append {
        seeded: bool,
    },
    Commands(Work, Tuning),
    /// The same work through cqrs-es + postgres-es (scenario P).
    #[cfg(feature = "cqrs-es")]
    Cqrs(Work),
}

/// Runs measurements and collects figures.
#[derive(Debug)]
pub(crate) struct Suite<'a> {
    pub db: &'a BenchDb,
    pub settings: &'a Settings,
    pub report: Report,
    /// Measurements taken again so far.
    pub retried: Cell<u32>,
}

impl Suite<'_> {
    /// Records a scenario's failure (it is reported as crashed; the run goes on).
    pub(crate) fn record(&mut self, scenario: &'static str, outcome: Result<()>, started: std::time::Instant) {
        eprintln!("scenario {scenario}: {:.1} s", started.elapsed().as_secs_f64());
        if let Err(error) = outcome {
            eprintln!("scenario {scenario} crashed: {error:#}");
            self.report.crashed.push((scenario, format!("{error:#}")));
        }
    }

    pub(crate) fn plan(&self) -> Plan {
        Plan { warmup: self.settings.warmup, window: self.settings.window }
    }

    /// F1 and the single-event append, at every writer count, with baselines (a) and (b).
    /// The diagnostic series (raw-b, appends, -plain, -nogc, -idem) run only at
    /// `settings.f1_diagnostic_writers`; raw-a, F1-new and F1-existing (the targets') at all.
    pub(crate) async fn f1(&mut self) -> Result<()> {
        use Tuning::{Default as Defaults, Idempotent, NoGroupCommit, Plain};
        let (ops, appends, cmds) = (Counted::Ops("ops/s"), Counted::Ops("appends/s"), Counted::Ops("cmd/s"));
        // (series, unit, job, on seeded streams, a headline series)
        let series = [
            ("append-new", appends, Job::Append { seeded: false }, false, false),
            ("F1-new-plain", cmds, Job::Commands(Work::Open, Plain), false, false),
            ("F1-new", cmds, Job::Commands(Work::Open, Defaults), false, true),
            ("F1-new-nogc", cmds, Job::Commands(Work::Open, NoGroupCommit), false, false),
            ("F1-new-idem", cmds, Job::Commands(Work::Open, Idempotent), false, false),
            ("append-existing", appends, Job::Append { seeded: true }, true, false),
            ("F1-existing-plain", cmds, Job::Commands(Work::Busy, Plain), true, false),
            ("F1-existing", cmds, Job::Commands(Work::Busy, Defaults), true, true),
            ("F1-existing-idem", cmds, Job::Commands(Work::Busy, Idempotent), true, false),
            ("F1-existing-nogc", cmds, Job::Commands(Work::Busy, NoGroupCommit), true, false),
        ];
        for w in self.settings.f1_writers.clone() {
            let diagnostics = self.settings.f1_diagnostic_writers.contains(&w);
            let a = Figure::new("raw-a", ops, self.run(Job::Raw(RawKind::Autocommit), w).await?);
            let b = match diagnostics {
                true => Some(Figure::new("raw-b", ops, self.run(Job::Raw(RawKind::Transaction), w).await?)),
                false => None,
            };
            let mut framework = Vec::new();
            for (name, counted, job, seeded, headline) in series {
                if !(headline || diagnostics) {
                    continue;
                }
                let sample = self.run(job, w).await?;
                let figure = match seeded {
                    true => self.seeded_figure(name, counted, sample),
                    false => Figure::new(name, counted, sample),
                };
                let figure = figure.against(&a);
                framework.push(match &b {
                    Some(b) => figure.against(b),
                    None => figure,
                });
            }
            self.report.figures.push(a);
            self.report.figures.extend(b);
            self.report.figures.extend(framework);
        }
        Ok(())
    }

    /// F2: 100-event commands against raw 100-row UNNEST inserts (c).
    pub(crate) async fn f2(&mut self) -> Result<()> {
        for w in self.settings.f2_writers.clone() {
            let c =
                Figure::new("raw-c", Counted::Items("rows/s"), self.run(Job::Raw(RawKind::Unnest(BATCH)), w).await?);
            self.report.figures.push(c.clone());
            for (series, tuning) in [("F2-nogc", Tuning::NoGroupCommit), ("F2", Tuning::Default)] {
                let f2 = self.run(Job::Commands(Work::Import(BATCH), tuning), w).await?;
                let cmds = f2.ops_per_s();
                let f2 = Figure::new(series, Counted::Items("events/s"), f2).with("commands_per_s", cmds, "cmd/s");
                self.report.figures.push(f2.against(&c));
            }
        }
        Ok(())
    }

    /// The F1 capacity F6's rates are shares of: `F1-new` at 32 writers (defaults), taken
    /// from this run's F1 if it ran, else measured now (and reported). Returns the rate
    /// and a metric naming where it came from.
    pub(crate) async fn f1_new_capacity(&mut self) -> Result<(f64, &'static str)> {
        let done = self.report.figures.iter().find(|f| f.series == "F1-new" && f.sample.writers == 32);
        if let Some(f) = done {
            return Ok((f.throughput(), "capacity_from_this_runs_F1"));
        }
        let sample = self.run(Job::Commands(Work::Open, Tuning::Default), 32).await?;
        let figure = Figure::new("F1-new", Counted::Ops("cmd/s"), sample).in_scenario("F6");
        let rate = figure.throughput();
        self.report.figures.push(figure);
        Ok((rate, "capacity_measured_at_F6_start"))
    }

    /// P: F1 (new and existing streams, at the profile's writer count: 32, or 8 with
    /// `--quick`) and F2 (at F2's writer counts) through cqrs-es + postgres-es, each next to
    /// tidemark's defaults measured again just before it.
    #[cfg(feature = "cqrs-es")]
    pub(crate) async fn p(&mut self) -> Result<()> {
        let w = self.settings.profile_writers;
        let mut jobs =
            vec![(w, Work::Open, "F1-new", "cqrs-F1-new"), (w, Work::Busy, "F1-existing", "cqrs-F1-existing")];
        for &w in &self.settings.f2_writers.clone() {
            jobs.push((w, Work::Import(BATCH), "F2", "cqrs-F2"));
        }
        for (w, work, ours, theirs) in jobs {
            let counted = match work {
                Work::Import(_) => Counted::Items("events/s"),
                _ => Counted::Ops("cmd/s"),
            };
            let tidemark = self.run(Job::Commands(work, Tuning::Default), w).await?;
            let cqrs = Figure::new(theirs, counted, self.run(Job::Cqrs(work), w).await?);
            let tidemark = Figure::new(ours, counted, tidemark).in_scenario("P").against(&cqrs);
            self.report.figures.extend([tidemark, cqrs]);
        }
        Ok(())
    }

    /// A figure on seeded streams, with the mean stream length at its end (the last
    /// loads read about that many events).
    fn seeded_figure(&self, series: &'static str, counted: Counted, sample: Sample) -> Figure {
        let length = self.settings.history as f64 + sample.total_ops as f64 / self.settings.existing_streams as f64;
        Figure::new(series, counted, sample).with("mean_stream_length_at_end", length, "events")
    }

    /// Measures a job; measures again (twice at most, and within the run's budget of
    /// `settings.retries`) when other processes took more than [`FOREIGN_LOAD_LIMIT`]
    /// of the machine meanwhile.
    async fn run(&self, job: Job, writers: usize) -> Result<Sample> {
        let mut tries = 0;
        loop {
            tries += 1;
            let sample = match job {
                Job::Raw(kind) => self.raw(kind, writers).await?,
                Job::Append { seeded } => self.append(writers, seeded).await?,
                Job::Commands(work, tuning) => self.commands(writers, work, tuning).await?,
                #[cfg(feature = "cqrs-es")]
                Job::Cqrs(work) => self.cqrs(writers, work).await?,
            };
            let budget = self.retried.get() < self.settings.retries;
            if sample.cpu.other <= FOREIGN_LOAD_LIMIT || tries > 2 || !budget {
                return Ok(sample);
            }
            self.retried.set(self.retried.get() + 1);
            eprintln!("  other processes took {:.0}% of the machine: measuring again", sample.cpu.other * 100.0);
        }
    }

    async fn raw(&self, kind: RawKind, writers: usize) -> Result<Sample> {
        let (tag, _) = self.setup(&format!("{}/w{writers}", kind.table()), writers, false).await?;
        let pool = self.db.raw_pool(&tag, writers).await?;
        let sql: Arc<str> = kind.sql(self.db.schema()).into();
        let ops = (0..writers).map(|i| RawWriter::new(pool.clone(), sql.clone(), kind, i)).collect();
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        pool.close().await;
        sample
    }

    async fn append(&self, writers: usize, seeded: bool) -> Result<Sample> {
        let (tag, hands) = self.setup(&format!("append/w{writers}"), writers, seeded).await?;
        let store = self.db.store(&tag, writers, false).await?;
        let history = self.settings.history;
        let ops = hands.into_iter().enumerate().map(|(i, h)| AppendWriter::new(store.clone(), h, history, i)).collect();
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        store.pool().close().await;
        sample
    }

    /// Sends commands through a command handler with `writers` writers.
    async fn commands(&self, writers: usize, work: Work, tuning: Tuning) -> Result<Sample> {
        let what = format!("commands {work:?} {tuning:?}/w{writers}");
        let (tag, hands) = self.setup(&what, writers, work == Work::Busy).await?;
        let store = self.db.store(&tag, writers, tuning.group_commit()).await?;
        let ops = command_writers(&store, work, tuning, hands)?;
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        store.pool().close().await;
        sample
    }

    /// Starts a measurement: empty tables, seeded accounts dealt out to the writers (or
    /// empty hands), a checkpoint; returns the measurement's connection tag and the hands.
    pub(crate) async fn setup(&self, what: &str, writers: usize, seeded: bool) -> Result<(String, Vec<Vec<StreamId>>)> {
        eprintln!("measuring {what} ({:?} warm-up, {:?} window)", self.settings.warmup, self.settings.window);
        self.db.reset().await?;
        let hands = if seeded { deal(&self.seed().await?, writers) } else { vec![Vec::new(); writers] };
        self.db.settle(self.settings.quiet_wait).await;
        Ok((self.db.next_tag(), hands))
    }

    /// Fresh accounts with `history` events each, written through the store.
    async fn seed(&self) -> Result<Vec<StreamId>> {
        let tag = self.db.next_tag();
        let store = self.db.store(&tag, 16, false).await?;
        let streams = seed(&store, self.settings.existing_streams, self.settings.history).await;
        store.pool().close().await;
        streams
    }
}

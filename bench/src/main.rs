//! tidemark's benchmark suite: `cargo run --release -p tidemark-bench -- [SCENARIO|all] [--quick] [--json]`.
//!
//! Every figure is measured next to a raw PostgreSQL baseline in the same run, at the
//! same concurrency, in a fresh schema that is dropped at the end. See BENCHMARKS.md.

mod append_to_read_model;
mod arrivals;
mod cli;
mod cpu;
#[cfg(feature = "cqrs-es")]
mod cqrs_es_comparison;
mod db;
mod domain;
mod figure;
mod framework;
mod hop_breakdown;
mod jetstream;
mod live_projection;
mod memory;
mod profile;
mod raw_append_to_read_model;
mod raw_inserts;
mod raw_publish;
mod raw_publish_lag;
mod raw_pull_consumers;
mod read_model;
mod rebuild;
mod relay;
mod report;
mod runner;
mod runner_process;
mod scenarios;
mod statements;
mod targets;
mod tenants;
mod visible;

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;

use crate::cli::{Cli, Settings};
use crate::db::{BenchDb, GroupCommitTuning};
use crate::report::Report;
use crate::scenarios::{Suite, NOT_LANDED};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    All,
    F1,
    F2,
    /// F3 with the relay part of M.
    F3,
    /// F4 with the runner part of M.
    F4,
    /// F5: rebuild from the log.
    F5,
    /// F3 and F4: both parts of M.
    M,
    /// F6: end-to-end latency.
    F6,
    /// P: cqrs-es + postgres-es on the F1/F2 workload.
    #[cfg(feature = "cqrs-es")]
    P,
    Profile,
    /// T: the cost of tenants.
    T,
    NotLanded(&'static str),
}

fn pick(scenario: &str) -> Result<Pick> {
    let upper = scenario.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "ALL" => Pick::All,
        "F1" => Pick::F1,
        "F2" => Pick::F2,
        "F3" => Pick::F3,
        "F4" => Pick::F4,
        "F5" => Pick::F5,
        "M" => Pick::M,
        "F6" => Pick::F6,
        #[cfg(feature = "cqrs-es")]
        "P" => Pick::P,
        "PROFILE" => Pick::Profile,
        "T" => Pick::T,
        other => match NOT_LANDED.iter().find(|(id, _)| *id == other) {
            Some((id, _)) => Pick::NotLanded(id),
            None => bail!("unknown scenario {scenario:?}: use F1, F2, profile, F3, F4, M, F5, F6, P, T or all"),
        },
    })
}

fn main() -> Result<ExitCode> {
    if let Ok(job) = std::env::var(runner_process::CHILD_ENV) {
        // F4's runner in a process of its own, started by the bench (see `runner_process`).
        runner_process::child_main(&job)?;
        return Ok(ExitCode::SUCCESS);
    }
    let cli = Cli::parse();
    let pick = pick(&cli.scenario)?;
    statements::install();
    let settings = Settings::from_cli(&cli);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(&cli, &settings, pick))?;
    if cli.json {
        print!("{}", report.json()?);
    } else {
        print!("{}", report.table());
    }
    Ok(verdict(&cli, &report))
}

/// The exit status: 2 when a scenario crashed; with `--check` (and not `--quick`), 1 when
/// a target was missed.
fn verdict(cli: &Cli, report: &Report) -> ExitCode {
    for (id, error) in &report.crashed {
        eprintln!("check: scenario {id} crashed: {error}");
    }
    if cli.check {
        let judgement = report.judgement();
        let missed = judgement.missed().count();
        eprintln!(
            "check: {} targets judged, {} met, {missed} missed; {} not measured in this run{}",
            judgement.verdicts.len(),
            judgement.verdicts.len() - missed,
            judgement.unmeasured.len(),
            if cli.quick { " (--quick: timings are not judged)" } else { "" }
        );
        if let Some(worst) = judgement.worst() {
            eprintln!("check: worst: {worst}");
        }
        if !report.crashed.is_empty() {
            return ExitCode::from(2);
        }
        if missed > 0 && !cli.quick {
            return ExitCode::from(1);
        }
    }
    if report.crashed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

async fn run(cli: &Cli, settings: &Settings, pick: Pick) -> Result<Report> {
    if let Pick::NotLanded(id) = pick {
        let not_landed = NOT_LANDED.iter().copied().filter(|(i, _)| *i == id).collect();
        return Ok(Report { not_landed, ..Report::default() });
    }
    let tuning =
        GroupCommitTuning { limits: cli.group_commit, overlap: cli.group_commit_overlap, notify: !cli.no_notify };
    let db = BenchDb::create(&cli.database_url, tuning).await?;
    eprintln!("schema {} on {}", db.schema(), redacted(&cli.database_url));
    let names = jetstream::Names::new();
    let mut suite = Suite { db: &db, settings, report: Report::default(), retried: Default::default() };
    let outcome = tokio::select! {
        outcome = measure(&mut suite, pick, &cli.nats_url, &names) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let mut report = suite.report;
    if matches!(pick, Pick::All | Pick::F3 | Pick::F4 | Pick::M | Pick::F6) {
        jetstream::delete_streams(&cli.nats_url, &names).await;
    }
    let dropped = db.drop_schema().await;
    outcome?;
    dropped?;
    if pick == Pick::All {
        report.not_landed = NOT_LANDED.to_vec();
    }
    Ok(report)
}

/// Runs the picked scenarios in turn. A scenario that fails is recorded as crashed and the
/// next one runs (each starts from emptied tables and its own streams).
async fn measure(suite: &mut Suite<'_>, pick: Pick, nats_url: &str, names: &jetstream::Names) -> Result<()> {
    let wanted = |picks: &[Pick]| pick == Pick::All || picks.contains(&pick);
    if wanted(&[Pick::F1]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f1().await);
        suite.record("F1", outcome, started);
    }
    if wanted(&[Pick::F2]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f2().await);
        suite.record("F2", outcome, started);
    }
    if wanted(&[Pick::Profile]) {
        let (started, outcome) = (std::time::Instant::now(), suite.profile().await);
        suite.record("profile", outcome, started);
    }
    if wanted(&[Pick::T]) {
        let (started, outcome) = (std::time::Instant::now(), suite.t().await);
        suite.record("T", outcome, started);
    }
    if wanted(&[Pick::F3, Pick::M]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f3(nats_url, names).await);
        suite.record("F3", outcome, started);
    }
    if wanted(&[Pick::F4, Pick::M]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f4(nats_url, names).await);
        suite.record("F4", outcome, started);
    }
    if wanted(&[Pick::F5]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f5().await);
        suite.record("F5", outcome, started);
    }
    if wanted(&[Pick::F6]) {
        let (started, outcome) = (std::time::Instant::now(), suite.f6(nats_url, names).await);
        suite.record("F6", outcome, started);
    }
    #[cfg(feature = "cqrs-es")]
    if wanted(&[Pick::P]) {
        let (started, outcome) = (std::time::Instant::now(), suite.p().await);
        suite.record("P", outcome, started);
    }
    Ok(())
}

/// The URL without its password, for the log.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

//! tidemark's benchmark suite: `cargo run --release -p tidemark-bench -- [SCENARIO|all] [--quick] [--json]`.
//!
//! Every figure is measured next to a raw PostgreSQL baseline in the same run, at the
//! same concurrency, in a fresh schema that is dropped at the end. See BENCHMARKS.md.

mod arrivals;
mod cli;
mod cpu;
mod db;
mod domain;
mod e2e_raw;
mod f4;
mod f5;
mod f6;
mod figure;
mod framework;
mod hops;
mod js;
#[cfg(feature = "cqrs-es")]
mod p;
mod profile;
mod pull;
mod raw;
mod readmodel;
mod relay;
mod report;
mod runner;
mod scenarios;
mod statements;
mod visible;

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
        other => match NOT_LANDED.iter().find(|(id, _)| *id == other) {
            Some((id, _)) => Pick::NotLanded(id),
            None => bail!("unknown scenario {scenario:?}: use F1, F2, profile, F3, F4, M, F5, F6, P or all"),
        },
    })
}

fn main() -> Result<()> {
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
    Ok(())
}

async fn run(cli: &Cli, settings: &Settings, pick: Pick) -> Result<Report> {
    if let Pick::NotLanded(id) = pick {
        let not_landed = NOT_LANDED.iter().copied().filter(|(i, _)| *i == id).collect();
        return Ok(Report { not_landed, ..Report::default() });
    }
    let tuning = GroupCommitTuning { limits: cli.group_commit, overlap: cli.group_commit_overlap };
    let db = BenchDb::create(&cli.database_url, tuning).await?;
    eprintln!("schema {} on {}", db.schema(), redacted(&cli.database_url));
    let names = js::Names::new();
    let mut suite = Suite { db: &db, settings, report: Report::default(), retried: Default::default() };
    let outcome = tokio::select! {
        outcome = measure(&mut suite, pick, &cli.nats_url, &names) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let mut report = suite.report;
    if matches!(pick, Pick::All | Pick::F3 | Pick::F4 | Pick::M | Pick::F6) {
        js::delete_streams(&cli.nats_url, &names).await;
    }
    let dropped = db.drop_schema().await;
    outcome?;
    dropped?;
    if pick == Pick::All {
        report.not_landed = NOT_LANDED.to_vec();
    }
    Ok(report)
}

async fn measure(suite: &mut Suite<'_>, pick: Pick, nats_url: &str, names: &js::Names) -> Result<()> {
    if matches!(pick, Pick::All | Pick::F1) {
        suite.f1().await?;
    }
    if matches!(pick, Pick::All | Pick::F2) {
        suite.f2().await?;
    }
    if matches!(pick, Pick::All | Pick::Profile) {
        suite.profile().await?;
    }
    if matches!(pick, Pick::All | Pick::F3 | Pick::M) {
        suite.f3(nats_url, names).await?;
    }
    if matches!(pick, Pick::All | Pick::F4 | Pick::M) {
        suite.f4(nats_url, names).await?;
    }
    if matches!(pick, Pick::All | Pick::F5) {
        suite.f5().await?;
    }
    if matches!(pick, Pick::All | Pick::F6) {
        suite.f6(nats_url, names).await?;
    }
    #[cfg(feature = "cqrs-es")]
    if matches!(pick, Pick::All | Pick::P) {
        suite.p().await?;
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

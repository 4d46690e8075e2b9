//! Command line and the settings derived from it.

use std::time::Duration;

use clap::Parser;

use crate::raw_pull_consumers::Tuning;

/// tidemark's benchmark suite. Every figure is compared with a raw PostgreSQL baseline
/// measured in the same run, at the same concurrency, on tables of the same shape.
#[derive(Debug, Parser)]
#[command(name = "tidemark-bench", version)]
pub(crate) struct Cli {
    /// The scenario: F1, F2, profile, F3, F4, M (F3 and F4), F5, F6, P, T (tenants), or all.
    #[arg(default_value = "all")]
    pub scenario: String,
    /// A CI smoke test: short windows, 1 and 8 writers; checks that the suite works.
    #[arg(long)]
    pub quick: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Judge the run by its targets: print a summary and the worst row on stderr, and exit
    /// with 1 when a target is missed. With --quick, timings are printed but not judged:
    /// only a crashed scenario fails the run (it always does, with or without --check).
    #[arg(long)]
    pub check: bool,
    /// Seconds measured per figure (default 5, or 0.5 with --quick).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Writer counts for F1 (default 1,8,32,64, or 1,8 with --quick).
    #[arg(long, value_delimiter = ',')]
    pub writers: Option<Vec<usize>>,
    /// F3: events stored before the relay drains them (default 1,000,000, or 20,000 with --quick).
    #[arg(long)]
    pub relay_events: Option<usize>,
    /// F3 lag: events appended per second while the relay runs (default 2000).
    #[arg(long)]
    pub lag_rate: Option<u32>,
    /// F4: events relayed, then applied by the runner and the baselines (default 200,000, or 10,000 with --quick).
    #[arg(long)]
    pub f4_events: Option<usize>,
    /// F5: events stored, then rebuilt from the log (default 1,000,000, or 10,000 with --quick).
    #[arg(long)]
    pub f5_events: Option<usize>,
    /// F4: partition counts (default 1,2,4).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Option<Vec<u32>>,
    /// F4: most events per transaction (RunnerConfig::batch_size; default 500).
    #[arg(long, default_value_t = 500)]
    pub f4_batch: usize,
    /// F4: messages per pull request (ConsumerSettings::pull_batch; default 1000).
    #[arg(long, default_value_t = 1000)]
    pub f4_pull_batch: usize,
    /// F4: milliseconds a batch waits for each further message (ConsumerSettings::linger; default 0).
    #[arg(long, default_value_t = 0.0)]
    pub f4_linger_ms: f64,
    /// Group-commit limits of every store with group commit on, as `MAX_BATCH,IN_FLIGHT`
    /// (PgStoreConfig::group_commit_limits; default 64,4).
    #[arg(long, value_name = "MAX_BATCH,IN_FLIGHT", value_parser = group_commit_limits)]
    pub group_commit: Option<(usize, usize)>,
    /// Group-commit overlap of every store with group commit on, as `EVENTS,WAIT_MS`: a batch
    /// starts beside one in flight once EVENTS wait or after WAIT_MS
    /// (PgStoreConfig::group_commit_overlap; default 16,5).
    #[arg(long, value_name = "EVENTS,WAIT_MS", value_parser = group_commit_overlap)]
    pub group_commit_overlap: Option<(usize, usize)>,
    /// The stores send no NOTIFY after appends (PgStoreConfig::notify(false)), to measure
    /// what it costs the writers. A diagnostic: readers in other processes then only poll,
    /// so F6-pgfeed's latencies mean nothing with it.
    #[arg(long)]
    pub no_notify: bool,
    /// F6: the open-loop rates, in percent of the F1 capacity (default 1,10,50: the target
    /// is set at 10 %; 1 % shows the pipelines' floor on this machine).
    #[arg(long, value_delimiter = ',')]
    pub f6_shares: Option<Vec<f64>>,
    /// F6: fixed open-loop rates in events/s instead of shares of the F1 capacity, so that
    /// builds whose F1 capacity differs are compared at the same load.
    #[arg(long, value_delimiter = ',', conflicts_with = "f6_shares")]
    pub f6_rates: Option<Vec<f64>>,
    /// F4, F6: the runner's feed gets no message key, so it checks every event against the
    /// store instead of trusting signed messages; to measure what the signatures save.
    #[arg(long)]
    pub unkeyed_feed: bool,
    /// F4, F6: the runner checks every batch against the versions it has seen before applying
    /// it, instead of applying small batches first; to measure what applying first saves.
    #[arg(long)]
    pub check_first: bool,
    /// The NATS server with JetStream (F3, F4); each run uses fresh streams, deleted at the end.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The PostgreSQL server; each run works in a fresh schema, dropped at the end.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub database_url: String,
}

/// Parses `--group-commit`: two positive numbers separated by a comma.
fn group_commit_limits(text: &str) -> Result<(usize, usize), String> {
    two_numbers(text, "MAX_BATCH,IN_FLIGHT", 1)
}

/// Parses `--group-commit-overlap`: a positive number of events and a wait in milliseconds.
fn group_commit_overlap(text: &str) -> Result<(usize, usize), String> {
    match two_numbers(text, "EVENTS,WAIT_MS", 0)? {
        (0, _) => Err(format!("EVENTS must be positive, got {text:?}")),
        pair => Ok(pair),
    }
}

/// Two numbers of at least `min` separated by a comma; `shape` names them in errors.
fn two_numbers(text: &str, shape: &str, min: usize) -> Result<(usize, usize), String> {
    let parse = |n: &str| n.trim().parse::<usize>().ok().filter(|n| *n >= min);
    match text.split_once(',') {
        Some((a, b)) => match (parse(a), parse(b)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(format!("expected {shape}, two numbers of at least {min}, got {text:?}")),
        },
        None => Err(format!("expected {shape}, got {text:?}")),
    }
}

/// How long and how wide each measurement is.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub warmup: Duration,
    pub window: Duration,
    /// Writer counts of F1 and the single-event append.
    pub f1_writers: Vec<usize>,
    /// Writer counts at which F1's diagnostic series run too (the headline ones run at all).
    pub f1_diagnostic_writers: Vec<usize>,
    /// Writer counts of F2.
    pub f2_writers: Vec<usize>,
    /// Writers of the profile run.
    pub profile_writers: usize,
    /// Whether the profile runs the default tuning only (not -plain and -nogc).
    pub profile_defaults_only: bool,
    /// Streams seeded per F1 "existing streams" measurement, shared out among writers.
    pub existing_streams: usize,
    /// Events in each seeded stream.
    pub history: usize,
    /// Longest wait before a measurement for other load on the machine to pass.
    pub quiet_wait: Duration,
    /// How many measurements disturbed by other load are taken again, in all.
    pub retries: u32,
    /// F3: events stored, then drained by the relay.
    pub relay_events: usize,
    /// F3: most of those events the raw JetStream baseline publishes.
    pub raw_events: usize,
    /// F3 lag: events appended per second, open loop, and for how long.
    pub lag_rate: u32,
    pub lag_window: Duration,
    /// F4: events stored, relayed, then consumed by each measurement.
    pub f4_events: usize,
    /// F4: partition counts.
    pub f4_partitions: Vec<u32>,
    /// F4: batch and pull settings, the same for the runner and the baselines.
    pub f4_tuning: Tuning,
    /// F5: events stored, then rebuilt.
    pub f5_events: usize,
    /// F6: warm-up and window of each open-loop measurement.
    pub f6_warmup: Duration,
    pub f6_window: Duration,
    /// F6: the open-loop rates, as shares of the F1 capacity (0.1 = 10 %).
    pub f6_shares: Vec<f64>,
    /// F6: fixed rates in events/s; when not empty, used instead of `f6_shares`.
    pub f6_rates: Vec<f64>,
    /// F4, F6: whether the runner's feed checks signatures with the store's key.
    pub keyed_feed: bool,
    /// F4, F6: whether the projection lets the runner apply batches before their check.
    pub undoable: bool,
}

impl Settings {
    pub(crate) fn from_cli(cli: &Cli) -> Self {
        let window = cli.seconds.map(Duration::from_secs_f64);
        let writers = cli.writers.clone().filter(|w| !w.is_empty() && w.iter().all(|n| *n > 0));
        let f4_partitions = cli.partitions.clone().filter(|p| !p.is_empty() && p.iter().all(|n| *n > 0));
        let f4_partitions = f4_partitions.unwrap_or_else(|| vec![1, 2, 4]);
        let f6_shares = cli.f6_shares.clone().filter(|s| !s.is_empty() && s.iter().all(|p| *p > 0.0 && *p <= 100.0));
        let f6_shares = f6_shares.map_or_else(|| vec![0.01, 0.1, 0.5], |s| s.iter().map(|p| p / 100.0).collect());
        let f6_rates: Vec<f64> = cli.f6_rates.iter().flatten().copied().filter(|r| *r >= 1.0).collect();
        let f4_tuning = Tuning {
            batch: cli.f4_batch.max(1),
            pull_batch: cli.f4_pull_batch.max(1),
            linger: Duration::from_secs_f64(cli.f4_linger_ms.max(0.0) / 1000.0),
        };
        if cli.quick {
            return Self {
                warmup: Duration::from_millis(200),
                window: window.unwrap_or(Duration::from_millis(500)),
                f1_writers: writers.clone().unwrap_or_else(|| vec![1, 8]),
                f1_diagnostic_writers: writers.unwrap_or_else(|| vec![8]),
                f2_writers: vec![1, 8],
                profile_writers: 8,
                profile_defaults_only: true,
                existing_streams: 200,
                history: 10,
                quiet_wait: Duration::ZERO,
                retries: 0,
                relay_events: cli.relay_events.unwrap_or(20_000),
                raw_events: 20_000,
                lag_rate: cli.lag_rate.filter(|r| *r > 0).unwrap_or(2000),
                lag_window: Duration::from_secs(1),
                f4_events: cli.f4_events.unwrap_or(10_000).max(1),
                f4_partitions,
                f4_tuning,
                f5_events: cli.f5_events.unwrap_or(10_000).max(1),
                f6_warmup: Duration::from_millis(200),
                f6_window: Duration::from_millis(500),
                f6_shares,
                f6_rates,
                keyed_feed: !cli.unkeyed_feed,
                undoable: !cli.check_first,
            };
        }
        Self {
            warmup: Duration::from_secs(1),
            window: window.unwrap_or(Duration::from_secs(5)),
            f1_writers: writers.clone().unwrap_or_else(|| vec![1, 8, 32, 64]),
            f1_diagnostic_writers: writers.unwrap_or_else(|| vec![1, 8, 32, 64]),
            f2_writers: vec![1, 8],
            profile_writers: 32,
            profile_defaults_only: false,
            existing_streams: 4096,
            history: 10,
            quiet_wait: Duration::from_secs(20),
            retries: 12,
            relay_events: cli.relay_events.unwrap_or(1_000_000),
            raw_events: usize::MAX,
            lag_rate: cli.lag_rate.filter(|r| *r > 0).unwrap_or(2000),
            lag_window: Duration::from_secs(10),
            f4_events: cli.f4_events.unwrap_or(200_000).max(1),
            f4_partitions,
            f4_tuning,
            f5_events: cli.f5_events.unwrap_or(1_000_000).max(1),
            f6_warmup: Duration::from_secs(1),
            f6_window: Duration::from_secs(10),
            f6_shares,
            f6_rates,
            keyed_feed: !cli.unkeyed_feed,
            undoable: !cli.check_first,
        }
    }
}

//! Fault injection against real processes: relays, projection runners and a writer are
//! `fault-node` processes that these tests kill with SIGKILL at random moments, on private
//! PostgreSQL and NATS servers (a single node, or a 3-node JetStream cluster) that they also
//! kill, stop and restart. After each run every stored event must be in JetStream exactly once
//! and in stream order, the ledger read model must hold every version once and in order,
//! nothing may be parked but the injected poison, and a rebuild must equal the live model.
//!
//! The normal suite runs a short version of each scenario. `scripts/fault-suite` runs them at
//! length: `TIDEMARK_FAULT_ROUNDS` rounds of `TIDEMARK_FAULT_KILLS` kills each.
//! `TIDEMARK_FAULT_SEED` replays a printed seed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tidemark_postgres::PgEventStore;
use tidemark_testkit::{unique_name, Child, NatsCluster, NatsServer, PgCluster};
use tidemark_tests::faults::deployment::{CheckRunner, FaultFeed};
use tidemark_tests::faults::node::LoadSummary;
use tidemark_tests::faults::verify::{self, eventually, stream_messages, StatusWatch};
use tidemark_tests::faults::{Counts, FaultConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the checks wait for the system to drain and catch up after the last fault
/// before they count what it holds (a run slower than `catch_up_bound` fails anyway).
const SETTLE: Duration = Duration::from_secs(180);

/// How soon after the writer stops every stored event must be in the read model
/// (`TIDEMARK_FAULT_CATCH_UP_SECS`, default 15 s: the fast subset runs two scenarios at
/// once on a shared machine; the figure each run took is printed).
fn catch_up_bound() -> Duration {
    Duration::from_secs(env_u64("TIDEMARK_FAULT_CATCH_UP_SECS", 15))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn base_seed() -> u64 {
    std::env::var("TIDEMARK_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Relay,
    Runner,
    Load,
}

impl Role {
    fn arg(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Runner => "runner",
            Self::Load => "load",
        }
    }
}

struct Process {
    name: String,
    role: Role,
    child: Option<Child>,
    starts: u32,
}

/// One deployment: its settings, its processes, and a store and runner of the test's own for
/// the checks.
struct Deployment {
    config: FaultConfig,
    dir: tempfile::TempDir,
    processes: Vec<Process>,
    store: PgEventStore,
    checker: CheckRunner,
    /// JetStream, when the runners are fed by it (none on the PostgreSQL feed).
    jetstream: Option<async_nats::jetstream::Context>,
    seed: u64,
    /// Each writer's pause between appends (the writer's rate).
    load_pause_ms: u64,
    /// The status watcher (see `verify::watch_status`), running from the start.
    watcher: Option<(CancellationToken, JoinHandle<StatusWatch>)>,
    /// What the watcher found, a line each.
    watch_details: Arc<Mutex<Vec<String>>>,
}

/// How the end of a run went, from the moment the writer stopped.
#[derive(Debug, Clone, Copy, Default)]
struct Settled {
    /// Until the status first said everything was taken in.
    status: Option<Duration>,
    /// Until the ledger (read directly) held every stored event.
    ledger: Option<Duration>,
    /// What the status watcher saw during the run.
    watch: StatusWatch,
}

impl Settled {
    fn describe(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), |d| format!("{} ms", d.as_millis()));
        format!(
            "status_caught_up_after={} ledger_caught_up_after={} lag_measurements={} said_caught_up={}",
            ms(self.status),
            ms(self.ledger),
            self.watch.measured,
            self.watch.said_caught_up
        )
    }

    /// Panics unless the ledger held everything within the bound after the writer stopped.
    fn assert_bounded(&self) {
        let bound = catch_up_bound();
        let ledger = self.ledger.unwrap_or(Duration::MAX);
        assert!(
            ledger <= bound,
            "the read model caught up {} after the writer stopped, not within {bound:?}",
            self.describe()
        );
    }
}

impl Deployment {
    async fn new(database_url: &str, nats_urls: Vec<String>, replicas: usize, seed: u64) -> Self {
        Self::on(FaultFeed::JetStream, database_url, nats_urls, replicas, seed).await
    }

    /// A deployment whose runners are fed by `feed`: on the PostgreSQL feed, no NATS at all
    /// (add no relays).
    async fn on(feed: FaultFeed, database_url: &str, nats_urls: Vec<String>, replicas: usize, seed: u64) -> Self {
        let name = unique_name("FAULTS");
        let config = FaultConfig {
            database_url: database_url.to_owned(),
            schema: name.to_lowercase(),
            nats_urls,
            stream: name.clone(),
            prefix: format!("f.{}", name.to_lowercase()),
            partitions: 4,
            replicas,
            feed,
        };
        let store = config.store(8).await.expect("store");
        store.migrate().await.expect("migrate");
        tidemark_projections_postgres::PgReadModels::new(&store).migrate().await.expect("projection migrations");
        let jetstream = match feed {
            FaultFeed::JetStream => {
                let client = config.nats().await.expect("nats");
                let relay = config.relay(store.clone(), client.clone()).expect("relay");
                relay.ensure_stream(&config.stream_settings()).await.expect("stream");
                Some(async_nats::jetstream::new(client))
            }
            FaultFeed::Postgres => None,
        };
        let checker = config.pg_runner(store.clone()).expect("runner");
        checker.set_up().await.expect("set up the ledger");
        let dir = tempfile::Builder::new().prefix("tidemark-faults-").tempdir().expect("temp dir");
        let watch_details = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let watch = verify::watch_status(
            checker.clone(),
            store.clone(),
            config.schema.clone(),
            stop.clone(),
            watch_details.clone(),
        );
        let watcher = Some((stop, tokio::spawn(watch)));
        let processes = Vec::new();
        Self { config, dir, processes, store, checker, jetstream, seed, load_pause_ms: 0, watcher, watch_details }
    }

    fn add(&mut self, role: Role, count: usize) {
        for _ in 0..count {
            let name = format!("{}-{}", role.arg(), self.processes.iter().filter(|p| p.role == role).count());
            self.processes.push(Process { name, role, child: None, starts: 0 });
            self.spawn(self.processes.len() - 1);
        }
    }

    fn summary_path(&self) -> PathBuf {
        self.dir.path().join("load-summary.json")
    }

    fn spawn(&mut self, index: usize) {
        let process = &mut self.processes[index];
        process.starts += 1;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fault-node"));
        cmd.arg(process.role.arg()).envs(self.config.env());
        if process.role == Role::Load {
            cmd.env("FAULT_LOAD_SEED", (self.seed ^ u64::from(process.starts)).to_string())
                .env("FAULT_LOAD_STREAMS", "48")
                .env("FAULT_LOAD_WRITERS", "6")
                .env("FAULT_LOAD_PAUSE_MS", self.load_pause_ms.to_string())
                .env("FAULT_LOAD_POISON", if process.starts == 1 { "1" } else { "0" })
                .env("FAULT_LOAD_SUMMARY", self.dir.path().join("load-summary.json"));
        }
        if let Ok(filter) = std::env::var("TIDEMARK_FAULT_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        let log = self.dir.path().join(format!("{}.log", process.name));
        process.child = Some(Child::spawn(cmd, &log).expect("spawn fault-node"));
    }

    fn kill(&mut self, index: usize) {
        if let Some(child) = self.processes[index].child.as_mut() {
            child.kill();
        }
        self.processes[index].child = None;
    }

    /// Panics (with its log) if a process ended that nobody killed: every component must
    /// survive the faults on its own.
    fn assert_alive(&mut self) {
        for process in &mut self.processes {
            if let Some(child) = process.child.as_mut() {
                if let Some(status) = child.exit_status() {
                    panic!("{} exited on its own ({status})\n{}", process.name, child.log_tail());
                }
            }
        }
    }

    /// The messages in JetStream or, on the PostgreSQL feed, the events in the store.
    async fn published(&self) -> u64 {
        match &self.jetstream {
            Some(jetstream) => stream_messages(jetstream, &self.config.stream).await.unwrap_or(0),
            None => {
                let sql = format!("SELECT count(*) FROM \"{}\".events", self.config.schema);
                let count: Option<i64> = sqlx::query_scalar(&sql).fetch_one(self.store.pool()).await.ok();
                count.map_or(0, i64::unsigned_abs)
            }
        }
    }

    /// Waits until JetStream (or the store, on the PostgreSQL feed) holds `more` messages
    /// beyond what it held when called.
    async fn progress(&self, more: u64, what: &str) {
        let from = self.published().await;
        let moved = eventually(Duration::from_secs(90), || async { self.published().await >= from + more }).await;
        assert!(moved, "no progress {what}: the feed stayed at {} messages (from {from})", self.published().await);
    }

    /// Stops the writer cleanly, lets everything drain, checks, and stops the rest. While it
    /// drains, the status is measured every 100 ms: from the moment it first says the
    /// ledger has taken in every stored event, the ledger itself must hold them all.
    async fn finish(mut self) -> (Counts, LoadSummary, Settled) {
        for index in 0..self.processes.len() {
            if self.processes[index].role == Role::Load {
                if let Some(mut child) = self.processes[index].child.take() {
                    child.interrupt().await;
                }
            }
        }
        let stopped = tokio::time::Instant::now();
        let summary: LoadSummary = std::fs::read_to_string(self.summary_path())
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let mut counts = Counts::default();
        let events = verify::read_store(&self.store, &self.config.schema).await;
        let facts = verify::stream_facts(&events, &mut counts);
        let last = events.last().map(|e| e.position).unwrap_or_default();
        let mut settled = Settled::default();
        let mut overclaimed = 0;
        while stopped.elapsed() < SETTLE {
            let status = self.checker.lag().await.ok().filter(|lag| lag.caught_up() && lag.head >= Some(last));
            let ledger = verify::ledger(&self.checker).await;
            let mut probe = Counts::default();
            verify::check_applied(&facts, &ledger, &self.checker, &mut probe).await;
            let ledger_done = verify::caught_up(&facts, &ledger) && probe.clean();
            if status.is_some() {
                settled.status.get_or_insert(stopped.elapsed());
                if !ledger_done {
                    overclaimed += 1;
                }
            }
            if ledger_done {
                settled.ledger.get_or_insert(stopped.elapsed());
            }
            if settled.status.is_some() && ledger_done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if settled.ledger.is_none() {
            eprintln!("the ledger did not catch up within {SETTLE:?}; counting what it holds");
        }
        if let Some((stop, watcher)) = self.watcher.take() {
            stop.cancel();
            settled.watch = watcher.await.unwrap_or_default();
        }
        self.assert_alive();
        if let Some(jetstream) = &self.jetstream {
            let published = verify::read_jetstream(jetstream, &self.config.stream).await;
            verify::check_published(&events, &published, &mut counts);
            if self.config.replicas > 1 {
                let copies = verify::read_replicas(jetstream, &self.config.stream, self.config.replicas).await;
                verify::check_replicas(&events, &copies, &mut counts);
                eprintln!("read the stream on {} of {} replicas", copies.len(), self.config.replicas);
            }
        }
        let ledger = verify::ledger(&self.checker).await;
        verify::check_applied(&facts, &ledger, &self.checker, &mut counts).await;
        counts.status_overclaimed = overclaimed + settled.watch.overclaimed;
        counts.details.extend(self.watch_details.lock().map(|d| d.clone()).unwrap_or_default());
        let audit = verify::audit(&self.store, &self.checker).await;
        counts.audit_findings = verify::audit_findings(&audit);
        if counts.audit_findings > 0 {
            counts.details.push(format!("audit: {audit}"));
        }
        verify::check_rebuild(&self.checker, &ledger, &mut counts).await;
        for process in &mut self.processes {
            if let Some(mut child) = process.child.take() {
                child.interrupt().await;
            }
        }
        if let Some(jetstream) = &self.jetstream {
            let _ = jetstream.delete_stream(&self.config.stream).await;
        }
        if !counts.clean() || summary.other_errors > 0 {
            let kept = self.dir.keep();
            eprintln!("the processes' logs are kept in {}", kept.display());
        }
        (counts, summary, settled)
    }

    fn logs(&self) -> &Path {
        self.dir.path()
    }
}

fn report(scenario: &str, seed: u64, counts: &Counts, extra: &str) {
    let json = serde_json::to_string(counts).unwrap_or_default();
    eprintln!("FAULTS {scenario} seed={seed} {extra} {json}");
    for line in &counts.details {
        eprintln!("  {line}");
    }
}

/// A process to kill: a runner half the time (their hand-overs are what the status must
/// stay honest through), otherwise a relay or the writer.
fn pick_victim(rng: &mut StdRng, deployment: &Deployment) -> usize {
    let runners: Vec<usize> =
        (0..deployment.processes.len()).filter(|i| deployment.processes[*i].role == Role::Runner).collect();
    if !runners.is_empty() && rng.gen_bool(0.5) {
        return runners[rng.gen_range(0..runners.len())];
    }
    rng.gen_range(0..deployment.processes.len())
}

fn random_pause(rng: &mut StdRng, millis: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rng.gen_range(millis))
}

/// Relays (one leads, one stands by), two runners sharing four partitions and a writer, each
/// killed with SIGKILL at random moments and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_matrix_kills_relays_runners_and_the_writer_at_random_moments() {
    let rounds = env_u64("TIDEMARK_FAULT_ROUNDS", 1);
    let kills = env_u64("TIDEMARK_FAULT_KILLS", 16);
    let base = base_seed();
    let pg = PgCluster::start().await;
    let nats = NatsServer::start().await;
    let mut total_kills = 0;
    for round in 0..rounds {
        let seed = base.wrapping_add(round);
        eprintln!(
            "crash matrix round {round}: seed {seed} (replay: TIDEMARK_FAULT_SEED={seed} TIDEMARK_FAULT_ROUNDS=1)"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let mut deployment = Deployment::new(&pg.url(), vec![nats.url()], 1, seed).await;
        // A few hundred events/s: a load the deployment keeps up with between kills, so
        // the status says caught up now and then, and what it says is checked.
        deployment.load_pause_ms = 20;
        deployment.add(Role::Relay, 2);
        deployment.add(Role::Runner, 2);
        deployment.add(Role::Load, 1);
        deployment.progress(100, "before the first kill").await;
        let mut victims = Vec::new();
        let started = tokio::time::Instant::now();
        for _ in 0..kills {
            let victim = pick_victim(&mut rng, &deployment);
            tokio::time::sleep(random_pause(&mut rng, 300..1500)).await;
            deployment.assert_alive();
            deployment.kill(victim);
            tokio::time::sleep(random_pause(&mut rng, 0..700)).await;
            deployment.spawn(victim);
            victims.push(deployment.processes[victim].name.clone());
        }
        total_kills += victims.len();
        let per_minute = victims.len() as f64 * 60.0 / started.elapsed().as_secs_f64();
        deployment.progress(50, "after the last restart").await;
        let logs = deployment.logs().to_owned();
        let (counts, load, settled) = deployment.finish().await;
        let extra = format!("kills={} per_minute={per_minute:.0} {}", victims.join(","), settled.describe());
        report("crash-matrix", seed, &counts, &extra);
        assert!(load.other_errors == 0, "the writer saw non-retryable errors: {load:?}");
        assert!(counts.events > 0 && counts.poison_streams == 1, "{counts:?}");
        assert!(counts.clean(), "seed {seed}: {counts:?} (logs in {})", logs.display());
        settled.assert_bounded();
    }
    eprintln!("crash matrix: {rounds} rounds, {total_kills} kills, all clean");
}

/// The PostgreSQL feed, with no NATS server at all: two runners sharing four partitions
/// read the store's log themselves and are killed with SIGKILL at random moments (the
/// writer now and then too) and started again. The checks are the crash matrix's, minus
/// JetStream: every stored event applied exactly once and in order (read back with plain
/// SQL), the status never ahead of the ledger, caught up within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_postgres_feed_runners_killed_many_times_a_minute_apply_every_event_once() {
    let rounds = env_u64("TIDEMARK_FAULT_ROUNDS", 1);
    let kills = env_u64("TIDEMARK_FAULT_KILLS", 16);
    let base = base_seed();
    let pg = PgCluster::start().await;
    for round in 0..rounds {
        let seed = base.wrapping_add(round);
        eprintln!(
            "postgres feed round {round}: seed {seed} (replay: TIDEMARK_FAULT_SEED={seed} TIDEMARK_FAULT_ROUNDS=1)"
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let mut deployment = Deployment::on(FaultFeed::Postgres, &pg.url(), Vec::new(), 1, seed).await;
        deployment.load_pause_ms = 20;
        deployment.add(Role::Runner, 2);
        deployment.add(Role::Load, 1);
        deployment.progress(100, "before the first kill").await;
        let mut victims = Vec::new();
        let started = tokio::time::Instant::now();
        for _ in 0..kills {
            let victim = pick_victim(&mut rng, &deployment);
            tokio::time::sleep(random_pause(&mut rng, 300..1500)).await;
            deployment.assert_alive();
            deployment.kill(victim);
            tokio::time::sleep(random_pause(&mut rng, 0..700)).await;
            deployment.spawn(victim);
            victims.push(deployment.processes[victim].name.clone());
        }
        let per_minute = victims.len() as f64 * 60.0 / started.elapsed().as_secs_f64();
        deployment.progress(50, "after the last restart").await;
        let logs = deployment.logs().to_owned();
        let (counts, load, settled) = deployment.finish().await;
        let runner_kills = victims.iter().filter(|v| v.starts_with("runner")).count();
        let extra = format!(
            "kills={} runner_kills={runner_kills} per_minute={per_minute:.0} {}",
            victims.join(","),
            settled.describe()
        );
        report("postgres-feed", seed, &counts, &extra);
        assert!(runner_kills > 0, "no runner was killed: {victims:?}");
        assert!(load.other_errors == 0, "the writer saw non-retryable errors: {load:?}");
        assert!(counts.events > 0 && counts.poison_streams == 1, "{counts:?}");
        assert!(counts.clean(), "seed {seed}: {counts:?} (logs in {})", logs.display());
        settled.assert_bounded();
    }
}

/// A JetStream cluster of three nodes and a stream with three replicas: a follower is killed
/// and restarted, then the stream's leader, then all of NATS goes away for 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: part of the full fault suite (scripts/fault-suite), not the fast subset"]
async fn a_jetstream_cluster_loses_a_node_its_stream_leader_and_then_everything() {
    jetstream_cluster(true).await;
}

/// The short form of the cluster scenario, in the fast subset: three nodes, R3, a follower
/// killed and restarted, then the stream's leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_cluster_loses_a_follower_and_then_its_stream_leader() {
    jetstream_cluster(false).await;
}

async fn jetstream_cluster(whole_outage: bool) {
    let seed = base_seed();
    let pg = PgCluster::start().await;
    let mut cluster = NatsCluster::start(3).await;
    let mut deployment = Deployment::new(&pg.url(), cluster.urls(), 3, seed).await;
    // About 600 events/s: enough to be mid-load at every fault, few enough to check quickly.
    deployment.load_pause_ms = 20;
    deployment.add(Role::Relay, 1);
    deployment.add(Role::Runner, 2);
    deployment.add(Role::Load, 1);
    deployment.progress(200, "on a healthy cluster").await;

    let leader = stream_leader(&deployment, &cluster).await;
    let follower = (0..cluster.size()).find(|i| *i != leader).unwrap_or(0);
    cluster.kill(follower);
    deployment.progress(200, "with a follower down").await;
    cluster.restart(follower).await;

    let leader = stream_leader(&deployment, &cluster).await;
    cluster.kill(leader);
    deployment.progress(200, "after the stream leader was killed").await;
    cluster.restart(leader).await;
    deployment.progress(200, "with the old leader back").await;

    if whole_outage {
        for node in 0..cluster.size() {
            cluster.stop(node).await;
        }
        // The outage itself: NATS is away for this long, whatever the clients do meanwhile.
        tokio::time::sleep(Duration::from_secs(10)).await;
        cluster.restart_all().await;
        deployment.progress(200, "after all of NATS came back").await;
    }

    let (counts, load, settled) = deployment.finish().await;
    let extra = format!("nodes=3 replicas=3 whole_outage={whole_outage} {}", settled.describe());
    report("jetstream-cluster", seed, &counts, &extra);
    assert!(load.other_errors == 0, "{load:?}");
    assert!(counts.clean(), "{counts:?}");
    settled.assert_bounded();
}

/// The server name of the stream's leader, as an index into the cluster.
async fn stream_leader(deployment: &Deployment, cluster: &NatsCluster) -> usize {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let jetstream = deployment.jetstream.as_ref().expect("a deployment on JetStream");
    loop {
        if let Ok(mut stream) = jetstream.get_stream(&deployment.config.stream).await {
            let leader = stream.info().await.ok().and_then(|info| info.cluster.clone()).and_then(|c| c.leader);
            if let Some(index) = leader.and_then(|name| cluster.index_of(&name)) {
                return index;
            }
        }
        assert!(tokio::time::Instant::now() < until, "the stream has no leader after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL restarts, then stops for a few seconds, while the writer appends: the writer sees
/// only retryable errors and no append is partial; relays and runners resume on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_and_stops_mid_load() {
    let seed = base_seed();
    let mut pg = PgCluster::start().await;
    let nats = NatsServer::start().await;
    let mut deployment = Deployment::new(&pg.url(), vec![nats.url()], 1, seed).await;
    deployment.add(Role::Relay, 2);
    deployment.add(Role::Runner, 2);
    deployment.add(Role::Load, 1);
    deployment.progress(200, "before the restart").await;

    pg.restart().await;
    deployment.progress(200, "after a PostgreSQL restart").await;
    pg.kill();
    // The outage: PostgreSQL is gone (crashed) for this long.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.restart().await;
    deployment.progress(200, "after PostgreSQL crashed and came back").await;

    let (counts, load, settled) = deployment.finish().await;
    let extra = format!("retryable_errors={} {}", load.retryable_errors, settled.describe());
    report("postgres-restart", seed, &counts, &extra);
    assert!(load.appended > 0 && load.other_errors == 0, "{load:?}");
    assert!(load.retryable_errors > 0, "the writer never noticed the outages: {load:?}");
    assert!(counts.clean(), "{counts:?}");
    settled.assert_bounded();
}

//! What each subcommand does (a module of the `orders` binary, not of the library).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use example_orders::app::AppConfig;
use example_orders::cli::{
    Cli, Command, DeploymentArgs, ForgetArgs, ProjectionsArgs, ProjectionsGroup, SeedArgs, ServeArgs, TokenArgs,
};
use example_orders::domain::{codec, fulfilment_codec};
use example_orders::health::{health_routes, serve_health, Check, Readiness};
use example_orders::http::router;
use example_orders::runtime::{
    start_embedded, start_postgres, EmbeddedOptions, FeedChoice, PgDeployment, PgOptions, PgServe, Role, Running,
    Tasks, BACK_CONSUMERS,
};
use example_orders::seed::{seed, SeedOptions};
use tidemark::EventStore;
use tidemark::LogDiagnostics;
use tidemark_projections::{
    BatchOptimisations, DocumentReader, DocumentTx, Feed, Ops, OpsCommand, ReadModelsAdmin, StreamCommand,
};
use tidemark_projections_postgres::PgArchive;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `orders token USER`.
pub(crate) fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let keys = args.secret.keys()?;
    println!("{}", keys.issue_in(args.tenant.as_deref(), &args.user, args.admin, args.ttl())?);
    Ok(ExitCode::SUCCESS)
}

/// `orders completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    clap_complete::generate(shell, &mut Cli::clap(), "orders", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `orders man`.
pub(crate) fn man() -> anyhow::Result<ExitCode> {
    clap_mangen::Man::new(Cli::clap()).render(&mut std::io::stdout()).context("writing the man page")?;
    Ok(ExitCode::SUCCESS)
}

/// Runs any other subcommand.
pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    if let Some(addr) = command.deployment().and_then(|deployment| deployment.metrics_addr) {
        example_orders::metrics::serve_metrics(addr).await?;
    }
    if let Some(ops_command) = command.ops() {
        let deployment = command.deployment().ok_or_else(|| anyhow!("an ops command without deployment flags"))?;
        return match command.tenant() {
            Some(tenant) => tenant_ops(&ops_command, deployment, tenant).await,
            None => ops(&ops_command, deployment).await,
        };
    }
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Relay(group) => relay(postgres(&group.deployment, "relay")?, group.deployment.health_addr).await,
        Command::Migrate(group) => migrate(postgres(&group.deployment, "migrate")?, group.args.output.json).await,
        Command::Seed(args) => seed_orders(&args, postgres(&args.deployment, "seed")?).await,
        Command::Forget(args) => forget(&args, postgres(&args.deployment, "forget")?).await,
        Command::Projections(ProjectionsGroup { command: ProjectionsArgs::Run(args), deployment }) => {
            consume(args.role(), postgres(&deployment, "projections run")?, deployment.health_addr).await
        }
        Command::Token(args) => token(&args),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        other => Err(anyhow!("unknown command {other:?}")),
    }
}

fn postgres(deployment: &DeploymentArgs, what: &str) -> anyhow::Result<PgOptions> {
    let options = deployment.postgres().ok_or_else(|| {
        anyhow!("`orders {what}` runs on PostgreSQL + JetStream: set DATABASE_URL (and NATS_URL unless NATS listens on 127.0.0.1:4222)")
    })?;
    Ok(named(options, what))
}

/// Names the NATS connection after the command, unless `--nats-name` did.
fn named(mut options: PgOptions, what: &str) -> PgOptions {
    if options.nats.name.is_none() {
        options.nats.name = Some(format!("orders {what}"));
    }
    options
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let postgres = args.deployment.postgres().map(|options| named(options, "serve"));
    if args.front && postgres.is_none() {
        return Err(anyhow!(
            "`orders serve --front` serves HTTP only, beside `orders relay` and `orders projections run` in other \
             processes, and so needs the PostgreSQL mode: set DATABASE_URL (the embedded mode always runs the \
             whole app in one process)"
        ));
    }
    let keys = args.secret.keys()?;
    let config = AppConfig::default().chaos(args.chaos);
    let listener = TcpListener::bind(args.addr).await.with_context(|| format!("listening on {}", args.addr))?;
    if args.chaos > 0.0 {
        tracing::warn!(fraction = args.chaos, "chaos mode: command requests fail with 500 on purpose");
    }
    let Some(options) = postgres else {
        let mut options = EmbeddedOptions::new(keys);
        options.config = config;
        options.import_fixture = !args.no_fixture;
        let running = start_embedded(options).await.context("starting the embedded mode")?;
        return http(running, listener, Readiness::default(), "embedded").await;
    };
    let deployment = PgDeployment::connect(options).await?;
    let mut options = PgServe::new(keys);
    options.config = config;
    options.import_fixture = !args.no_fixture;
    options.all = !args.front;
    let running = start_postgres(&deployment, options).await?;
    let readiness = Readiness::deployment(deployment.store.pool().clone(), deployment.client.clone(), []);
    let mode = match (deployment.options.feed, args.front) {
        (FeedChoice::Jetstream, true) => {
            "PostgreSQL + JetStream, HTTP only: run `orders relay` and `orders projections run` beside it"
        }
        (FeedChoice::Jetstream, false) => "PostgreSQL + JetStream, relay and consumers in this process",
        (FeedChoice::Postgres, true) => {
            "PostgreSQL only (no NATS), HTTP only: run `orders projections run --feed postgres` beside it"
        }
        (FeedChoice::Postgres, false) => "PostgreSQL only (no NATS), consumers in this process reading the log",
    };
    http(running, listener, readiness, mode).await
}

/// Serves HTTP until Ctrl-C, SIGTERM or a failed background task, then stops everything.
async fn http<S, R, F>(
    running: Running<S, R, F>,
    listener: TcpListener,
    readiness: Readiness,
    mode: &str,
) -> anyhow::Result<ExitCode>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
    R::Tx: DocumentTx,
    F: Feed + Clone,
{
    let address: SocketAddr = listener.local_addr()?;
    println!("orders: serving on http://{address}/ ({mode})");
    let stop = running.background.shutdown().clone();
    stop_on_signal(stop.clone());
    let app = router(running.app.clone()).merge(health_routes(readiness));
    let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    let stopped = running.join().await;
    served?;
    stopped?;
    Ok(ExitCode::SUCCESS)
}

async fn relay(options: PgOptions, health: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let deployment = PgDeployment::connect(options).await?;
    deployment.check().await?;
    let mut tasks = Tasks::default();
    deployment.spawn_pool_gauges(&mut tasks);
    let monitor = deployment.spawn_relay(&mut tasks).await?;
    let checks = [Check::Relay(monitor)];
    serve_health_on(health, &deployment, checks, tasks.shutdown()).await?;
    let o = &deployment.options;
    println!("orders: relaying schema {} to JetStream stream {} ({}.>)", o.schema, o.stream, o.subject_prefix);
    until_stopped(tasks.shutdown()).await;
    tasks.join().await?;
    Ok(ExitCode::SUCCESS)
}

async fn consume(role: Role, options: PgOptions, health: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let deployment = PgDeployment::connect(options).await?;
    deployment.check().await?;
    let mut tasks = Tasks::default();
    deployment.spawn_pool_gauges(&mut tasks);
    deployment.spawn_summaries(&role, &mut tasks).await?;
    let background = deployment.backend().await?.start_consumers(&role, tasks)?;
    let checks = [Check::Consumers(background.consumers())];
    serve_health_on(health, &deployment, checks, background.shutdown()).await?;
    let names: Vec<&str> = BACK_CONSUMERS.into_iter().filter(|name| role.runs(name)).collect();
    match deployment.options.feed {
        FeedChoice::Jetstream => {
            println!("orders: running {} on JetStream stream {}", names.join(", "), deployment.options.stream);
        }
        FeedChoice::Postgres => {
            println!("orders: running {} on the log of schema {}", names.join(", "), deployment.options.schema);
        }
    }
    until_stopped(background.shutdown()).await;
    background.join().await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `/livez` and `/readyz` on `addr`, if given, until `stop`: PostgreSQL, NATS and `checks`.
async fn serve_health_on(
    addr: Option<SocketAddr>,
    deployment: &PgDeployment,
    checks: impl IntoIterator<Item = Check>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    if let Some(addr) = addr {
        let readiness = Readiness::deployment(deployment.store.pool().clone(), deployment.client.clone(), checks);
        serve_health(addr, readiness, stop.clone()).await?;
    }
    Ok(())
}

async fn migrate(options: PgOptions, json: bool) -> anyhow::Result<ExitCode> {
    let deployment = PgDeployment::connect(options).await?;
    deployment.migrate().await?;
    let o = &deployment.options;
    if json {
        let line = serde_json::json!({ "schema": o.schema, "stream": o.stream, "subjects": format!("{}.>", o.subject_prefix) });
        println!("{line}");
    } else if o.feed.needs_nats() {
        println!(
            "orders: schema {} migrated; JetStream stream {} ready for {}.>",
            o.schema, o.stream, o.subject_prefix
        );
    } else {
        println!("orders: schema {} migrated (PostgreSQL feed: no JetStream stream)", o.schema);
    }
    Ok(ExitCode::SUCCESS)
}

async fn seed_orders(args: &SeedArgs, options: PgOptions) -> anyhow::Result<ExitCode> {
    let deployment = PgDeployment::connect_lazily(options).await?;
    deployment.check().await?;
    let mut options = SeedOptions::new(args.orders);
    options.concurrency = args.concurrency;
    options.rng_seed = args.rng_seed.unwrap_or(options.rng_seed);
    let report = seed(&deployment.backend().await?.handlers()?, &options).await?;
    println!("orders: seeded {report} (rng seed {})", options.rng_seed);
    Ok(ExitCode::SUCCESS)
}

async fn forget(args: &ForgetArgs, options: PgOptions) -> anyhow::Result<ExitCode> {
    if !args.yes {
        eprintln!("orders: `forget` destroys {:?}'s personal data for good; add --yes to confirm", args.customer);
        return Ok(ExitCode::from(2));
    }
    let deployment = PgDeployment::connect_lazily(options).await?;
    deployment.check().await?;
    let report = deployment.forget_customer(&args.customer).await?;
    let destroyed = if report.key_destroyed { "key destroyed" } else { "no key left to destroy" };
    println!(
        "orders: forgot {:?} ({destroyed}; {} order streams, {} snapshots deleted; orders and sales read models rebuilt)",
        args.customer,
        report.streams.len(),
        report.snapshots_deleted
    );
    Ok(ExitCode::SUCCESS)
}

/// The ops commands of `tidemark-projections`, with this app's consumers and codecs. They
/// read the deployment's PostgreSQL; an embedded server keeps its store in its own memory,
/// out of their reach, so without DATABASE_URL they refuse (exit 1).
async fn ops(command: &OpsCommand, deployment: &DeploymentArgs) -> anyhow::Result<ExitCode> {
    let Some(options) = ops_options(deployment) else { return Ok(ExitCode::FAILURE) };
    let deployment = PgDeployment::connect_lazily(options).await?;
    let migrations = deployment.read_models.clone();
    if let OpsCommand::Migrate(_) = command {
        // Reports on a schema that may not be migrated yet: nothing else is mounted.
        let ops = Ops::new(deployment.store.clone()).migrations(migrations);
        return Ok(ExitCode::from(run_ops(&ops, command).await.code()));
    }
    deployment.check().await?;
    let archive = PgArchive::new(deployment.store.clone());
    let mut ops = deployment.backend().await?.ops()?.migrations(migrations).archive(archive);
    if deployment.client.is_some() {
        ops = ops.relay(deployment.relay()?);
    }
    Ok(ExitCode::from(run_ops(&ops, command).await.code()))
}

/// The ops commands limited to one tenant's streams (`--tenant`): they run over the
/// tenant's view of the store, with this app's codecs, and see nothing of another
/// tenant's streams. `stream archive` moves every tenant's deleted streams: it is refused.
async fn tenant_ops(command: &OpsCommand, deployment: &DeploymentArgs, tenant: &str) -> anyhow::Result<ExitCode> {
    if let OpsCommand::Stream(StreamCommand::Archive { .. }) = command {
        eprintln!("error: `stream archive` moves the deleted streams of every tenant: it takes no --tenant");
        return Ok(ExitCode::from(2));
    }
    let Some(options) = ops_options(deployment) else { return Ok(ExitCode::FAILURE) };
    let deployment = PgDeployment::connect_lazily(options).await?;
    deployment.check().await?;
    let ops = Ops::new(deployment.tenant_store(tenant)?).codec(codec()?).codec(fulfilment_codec()?);
    Ok(ExitCode::from(run_ops(&ops, command).await.code()))
}

/// The deployment the ops commands read; `None`, having said why, without DATABASE_URL.
fn ops_options(deployment: &DeploymentArgs) -> Option<PgOptions> {
    let options = deployment.postgres().map(|options| named(options, "ops"));
    if options.is_none() {
        eprintln!(
            "error: the ops commands read a PostgreSQL deployment: set DATABASE_URL (and the --schema the server \
             uses). They cannot reach an embedded server: its store lives in that process's memory only."
        );
    }
    options
}

async fn run_ops<S: EventStore + LogDiagnostics>(ops: &Ops<S>, command: &OpsCommand) -> tidemark_projections::OpsExit {
    ops.run(command, &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// Waits until `stop` is cancelled: by Ctrl-C, SIGTERM, or a failed background task.
async fn until_stopped(stop: &CancellationToken) {
    stop_on_signal(stop.clone());
    stop.cancelled().await;
}

fn stop_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown_signal() => stop.cancel(),
            () = stop.cancelled() => {}
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

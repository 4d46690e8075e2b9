//! Credentials never reach a log, a `Debug` string or an error message: the database
//! password, the NATS password and the token secret, through the command line, the
//! start-up path of `serve` on PostgreSQL + JetStream (with every log level captured), its
//! failures, and the `orders` binary itself.
//!
//! This file installs the process-wide tracing subscriber, so it holds only these tests.

mod support;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::Method;
use example_orders::auth::DEFAULT_TOKEN_TTL;
use example_orders::cli::{Cli, Command as CliCommand};
use example_orders::http::router;
use example_orders::runtime::{start_postgres, PgDeployment, PgServe};
use tidemark_testkit::{free_port, unique_name, NatsSecurity, NatsServer, TestSchema};

use support::{call, place};

const NATS_PASSWORD: &str = "nats-pw-4f1c9e";
const TOKEN_SECRET: &str = "token-secret-0123456789abcdef-9b7d";

/// Everything every subscriber-visible event wrote, at every level.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .init();
        logs
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    String::from_utf8_lossy(&captured().lock().expect("log buffer")).into_owned()
}

/// `url` with `password` as its user's password (PostgreSQL here trusts loopback, so any
/// password connects). A URL that has a password already keeps it: that one is checked.
fn with_password(url: &str, password: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.split_once('@').expect("a URL with a user");
    match userinfo.split_once(':') {
        Some((_, existing)) if !existing.is_empty() => (url.to_owned(), existing.to_owned()),
        _ => {
            let user = userinfo.split(':').next().unwrap_or(userinfo);
            (format!("{scheme}://{user}:{password}@{host}"), password.to_owned())
        }
    }
}

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows the secret {secret:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_path_logs_and_shows_no_credentials() {
    captured();
    let schema = TestSchema::new().await;
    let (database_url, db_password) = with_password(schema.url(), "db-pw-7e3a51");
    let nats = NatsServer::start_secured(NatsSecurity::user_password("orders", NATS_PASSWORD).tls()).await;
    let ca = nats.tls_files().expect("TLS").ca().to_string_lossy().into_owned();
    let stream = unique_name("ORDERS");
    let prefix = format!("t.{}", stream.to_lowercase());
    let args = [
        "orders",
        "serve",
        "--database-url",
        &database_url,
        "--schema",
        schema.name(),
        "--nats-url",
        &nats.url(),
        "--nats-user",
        "orders",
        "--nats-password",
        NATS_PASSWORD,
        "--nats-ca",
        &ca,
        "--jetstream-stream",
        &stream,
        "--subject-prefix",
        &prefix,
        "--token-secret",
        TOKEN_SECRET,
    ];
    let secrets = [db_password.as_str(), NATS_PASSWORD, TOKEN_SECRET];
    let cli = Cli::try_parse_from(args).expect("parses");
    let shown = format!("{cli:?}");
    assert_hidden("the parsed command line", &shown, &secrets);
    assert!(shown.contains(schema.name()) && shown.contains("***"), "{shown}");

    let options = cli.deployment().and_then(|d| d.postgres()).expect("PostgreSQL mode").connections(4, 4);
    assert_eq!(options.database_url, database_url, "the real URL is what connects");
    assert_hidden("PgOptions", &format!("{options:?} {}", options.nats), &secrets);
    let Some(CliCommand::Serve(serve)) = cli.command else { panic!("serve") };
    let keys = serve.secret.keys().expect("keys");

    let deployment = PgDeployment::connect(options.clone()).await.expect("connects with the credentials");
    deployment.migrate().await.expect("migrate");
    assert_hidden("PgDeployment", &format!("{deployment:?}"), &secrets);
    let running = start_postgres(&deployment, PgServe::new(keys.clone())).await.expect("starts");
    let app = router(running.app.clone());
    let ada = keys.issue("ada", false, DEFAULT_TOKEN_TTL).expect("token");
    let (order_id, _) = place(&app, &ada, "tea").await;
    let path = format!("/orders/{order_id}?version=1&wait_ms=20000");
    let read = call(&app, Method::GET, &path, Some(&ada), &[], None).await;
    assert_eq!(read.body["customer"], "ada", "the order went through the relay and the projection: {read:?}");
    running.join().await.expect("clean stop");

    // Failures: a database that does not answer, a NATS password that is wrong.
    let closed = format!("postgres://postgres:{db_password}@127.0.0.1:{}/test", free_port());
    let mut unreachable = options.clone();
    unreachable.database_url = closed;
    let error = PgDeployment::connect(unreachable).await.unwrap_err();
    assert_hidden("a database connection error", &format!("{error} {error:?}"), &secrets);
    let wrong = options.clone().nats(options.nats.clone().user_password("orders", "nats-wrong-pw-61aa"));
    let error = PgDeployment::connect(wrong).await.unwrap_err();
    assert!(error.to_string().contains("refused the credentials"), "{error}");
    assert_hidden(
        "a NATS connection error",
        &format!("{error} {error:?}"),
        &[&secrets[..], &["nats-wrong-pw-61aa"]].concat(),
    );

    // The capture works: it holds the start-up log line (with the URL redacted), and it
    // would hold a secret that was logged.
    let canary = unique_name("canary");
    tracing::info!(%canary, "logged on purpose");
    let logs = logs();
    assert!(logs.contains(&canary), "the capture misses events");
    assert!(logs.contains("connecting") && logs.contains(":***@"), "the start-up log line is captured:\n{logs}");
    assert_hidden("the logs", &logs, &secrets);
    async_nats::jetstream::new(deployment.client.clone().expect("NATS"))
        .delete_stream(&stream)
        .await
        .expect("delete stream");
}

#[test]
fn the_binary_prints_no_credentials_when_it_fails() {
    let db_password = "db-pw-bin-2c8d";
    let url = format!("postgres://postgres:{db_password}@127.0.0.1:{}/test", free_port());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let nats = runtime.block_on(NatsServer::start_secured(NatsSecurity::user_password("orders", NATS_PASSWORD)));
    let run = |nats_password: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_orders"))
            .arg("migrate")
            .env("RUST_LOG", "trace")
            .env("DATABASE_URL", &url)
            .env("NATS_URL", nats.url())
            .env("NATS_USER", "orders")
            .env("NATS_PASSWORD", nats_password)
            .env("ORDERS_TOKEN_SECRET", TOKEN_SECRET)
            .output()
            .expect("run orders");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
    };
    let output = run(NATS_PASSWORD);
    assert!(output.contains("PostgreSQL") && output.contains(":***@127.0.0.1"), "{output}");
    assert_hidden(
        "orders migrate against a closed database port",
        &output,
        &[db_password, NATS_PASSWORD, TOKEN_SECRET],
    );
    let output = run("nats-wrong-pw-bin");
    assert!(output.contains("refused the credentials"), "{output}");
    assert_hidden("orders migrate with a wrong NATS password", &output, &[db_password, "nats-wrong-pw-bin"]);
}

//! The `orders` command line: subcommands, the mounted ops CLI, modes.

use example_orders::cli::{Cli, Command, ProjectionsArgs, ProjectionsGroup};
use example_orders::runtime::{embedded_backend, Role, StartError, Tasks, BACK_CONSUMERS};
use tidemark_projections::{DlqCommand, EventsCommand, OpsCommand, ProjectionsCommand, RelayCommand};

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("orders").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?} parses: {e}"))
}

fn ops(args: &[&str]) -> OpsCommand {
    parse(args).command.and_then(|c| c.ops()).unwrap_or_else(|| panic!("{args:?} is an ops command"))
}

#[test]
fn the_ops_cli_is_mounted_next_to_the_apps_own_subcommands() {
    let status = ops(&["projections", "status", "--json"]);
    assert!(matches!(status, OpsCommand::Projections(ProjectionsCommand::Status(output)) if output.json), "{status:?}");
    assert!(matches!(ops(&["dlq", "list"]), OpsCommand::Dlq(DlqCommand::List { projection: None, .. })));
    assert!(matches!(ops(&["events", "verify"]), OpsCommand::Events(EventsCommand::Verify(_))));
    assert!(matches!(ops(&["stream", "show", "order-1"]), OpsCommand::Stream(_)));
    // The deployment's JetStream stream option must not leak into `rebuild --stream`.
    let rebuild = ops(&["projections", "rebuild", "orders", "--yes"]);
    assert!(
        matches!(&rebuild, OpsCommand::Projections(ProjectionsCommand::Rebuild { name, yes: true, stream: None, .. }) if name.as_deref() == Some("orders")),
        "{rebuild:?}"
    );

    let all = ops(&["projections", "rebuild", "--all", "--yes"]);
    assert!(matches!(&all, OpsCommand::Projections(ProjectionsCommand::Rebuild { name: None, all: true, .. })));
    let pause = ops(&["projections", "pause", "sales"]);
    assert!(matches!(&pause, OpsCommand::Projections(ProjectionsCommand::Pause { name, .. }) if name == "sales"));
    let replay = ops(&["projections", "replay", "orders", "--from", "12/34", "--yes"]);
    assert!(
        matches!(&replay, OpsCommand::Projections(ProjectionsCommand::Replay { from: Some(p), since: None, .. }) if p.to_string() == "12/34"),
        "{replay:?}"
    );
    let status = ops(&["relay", "status", "--json", "--schema", "shop"]);
    assert!(matches!(status, OpsCommand::Relay(RelayCommand::Status(output)) if output.json), "{status:?}");
    let reset = ops(&["relay", "reset", "--to", "0/0"]);
    assert!(matches!(reset, OpsCommand::Relay(RelayCommand::Reset { yes: false, .. })), "{reset:?}");
    let check = ops(&["migrate", "--check"]);
    assert!(matches!(check, OpsCommand::Migrate(args) if args.check && !args.print_sql), "{check:?}");
    assert!(parse(&["migrate"]).command.is_some_and(|c| c.ops().is_none()), "a bare migrate applies");
    assert!(parse(&["relay"]).command.is_some_and(|c| c.ops().is_none()), "a bare relay runs");

    let run = parse(&["projections", "run", "--only", "orders"]).command;
    let Some(Command::Projections(ProjectionsGroup { command: ProjectionsArgs::Run(args), .. })) = run else {
        panic!("{run:?}")
    };
    assert_eq!(args.role(), Role::Back { only: Some("orders".to_owned()) });
    assert!(parse(&["projections", "run"]).command.is_some_and(|c| c.ops().is_none()));
}

#[test]
fn serve_seed_migrate_and_the_default_parse() {
    let seed = parse(&["seed", "--orders", "10"]).command;
    assert!(matches!(&seed, Some(Command::Seed(args)) if args.orders == 10), "{seed:?}");
    assert!(matches!(parse(&["serve", "--front"]).command, Some(Command::Serve(args)) if args.front));
    assert!(matches!(parse(&["serve"]).command, Some(Command::Serve(args)) if !args.front));
    assert!(matches!(parse(&["migrate"]).command, Some(Command::Migrate(_))));
    assert!(matches!(parse(&["relay"]).command, Some(Command::Relay(_))));
    let bare = parse(&["--chaos", "0.5"]);
    assert!(bare.command.is_none() && bare.serve.chaos == 0.5 && !bare.serve.front, "no subcommand serves");
    assert!(matches!(bare.into_command(), Command::Serve(args) if args.chaos == 0.5));
    assert!(Cli::try_parse_from(["orders", "--chaos", "2"]).is_err(), "a fraction");
    assert!(Cli::try_parse_from(["orders", "projections", "frobnicate"]).is_err());
}

#[test]
fn database_url_selects_the_postgres_mode_with_its_options() {
    if std::env::var_os("DATABASE_URL").is_none() {
        assert!(parse(&["serve"]).deployment().and_then(|d| d.postgres()).is_none(), "no DATABASE_URL: embedded");
    }
    let args = ["serve", "--database-url", "postgres://db/x", "--schema", "shop", "--jetstream-stream", "SHOP"];
    let options = parse(&args).deployment().and_then(|d| d.postgres()).expect("postgres mode");
    assert_eq!((options.schema.as_str(), options.stream.as_str()), ("shop", "SHOP"));
    assert_eq!((options.subject_prefix.as_str(), options.partitions), ("orders.events", 4));
    assert_eq!(options.summary_bucket(), "SHOP_SUMMARY", "the summaries' bucket follows the stream");
    let args = ["serve", "--database-url", "postgres://db/x", "--summary-bucket", "SHOP_VIEWS"];
    let options = parse(&args).deployment().and_then(|d| d.postgres()).expect("postgres mode");
    assert_eq!(options.summary_bucket(), "SHOP_VIEWS");
}

#[tokio::test]
async fn projections_run_only_accepts_the_consumers_it_runs() {
    for name in BACK_CONSUMERS {
        assert!(Role::Back { only: Some(name.to_owned()) }.check().is_ok(), "{name}");
    }
    let backend = embedded_backend(false, 2).await.expect("backend");
    let only = Role::Back { only: Some("order-notices".to_owned()) };
    let refused = backend.start_consumers(&only, Tasks::default());
    assert!(matches!(refused, Err(StartError::UnknownConsumer { .. })), "the notifier runs with serve: {refused:?}");
    assert!(Role::Front.runs("order-notices") && !Role::Front.runs("orders"));
    assert!(Role::Back { only: None }.runs("pm-shipping") && !Role::Back { only: None }.runs("order-notices"));
}

#[test]
fn nats_flags_give_the_connection_options_of_every_command() {
    for command in ["serve", "relay", "migrate", "seed"] {
        let args = [
            command,
            "--database-url",
            "postgres://db/x",
            "--nats-url",
            "tls://n1:4222, tls://n2:4222",
            "--nats-user",
            "orders",
            "--nats-password",
            "pw-cli-5e",
            "--nats-ca",
            "/etc/ca.pem",
            "--nats-cert",
            "/c.pem",
            "--nats-key",
            "/k.pem",
            "--nats-require-tls",
            "--nats-name",
            "front",
        ];
        let nats = parse(&args).deployment().and_then(|d| d.postgres()).expect("postgres mode").nats;
        assert_eq!(nats.servers, ["tls://n1:4222", "tls://n2:4222"], "{command}");
        assert_eq!(nats.user.as_deref(), Some("orders"));
        assert!(nats.has_password() && !nats.has_token() && nats.require_tls);
        assert_eq!(nats.ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(nats.client_cert.is_some());
        assert_eq!(nats.name.as_deref(), Some("front"));
        assert!(!format!("{nats:?} {nats}").contains("pw-cli-5e"));
    }
    let token = parse(&["relay", "--database-url", "postgres://db/x", "--nats-token", "t"])
        .deployment()
        .and_then(|d| d.postgres());
    assert!(token.expect("postgres mode").nats.has_token());
    let refused: [&[&str]; 3] = [
        &["relay", "--nats-user", "orders"],
        &["relay", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"],
        &["relay", "--nats-cert", "/c.pem"],
    ];
    for args in refused {
        assert!(Cli::try_parse_from(std::iter::once("orders").chain(args.iter().copied())).is_err(), "{args:?}");
    }
}

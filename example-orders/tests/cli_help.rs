//! The `orders` binary's help, completions, man page and exit codes, as a user meets them:
//! each subcommand lists the flags it uses (and no others), shows examples, every ops
//! command speaks JSON, every destructive one asks for `--yes`.

use std::process::{Command, Output, Stdio};

/// Runs `orders args…` with no deployment in the environment and no standard input.
fn orders(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
    command.args(args).stdin(Stdio::null()).env("RUST_LOG", "warn");
    for name in ["DATABASE_URL", "NATS_URL", "ORDERS_SCHEMA", "ORDERS_TOKEN_SECRET", "ORDERS_METRICS_ADDR"] {
        command.env_remove(name);
    }
    command.output().expect("run orders")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `orders args… --help`, which must succeed.
fn help(args: &[&str]) -> String {
    let output = orders(&[args, &["--help"]].concat());
    assert!(output.status.success(), "orders {args:?} --help: {}", stderr(&output));
    stdout(&output)
}

const DEPLOYMENT_FLAGS: [&str; 4] = ["--database-url", "--nats-url", "--jetstream-stream", "--partitions"];

#[test]
fn token_help_lists_only_its_own_flags() {
    let text = help(&["token"]);
    for flag in DEPLOYMENT_FLAGS.iter().chain(&["--nats-password", "--schema", "--metrics-addr"]) {
        assert!(!text.contains(flag), "`orders token --help` lists {flag}:\n{text}");
    }
    for flag in ["--admin", "--tenant", "--ttl-hours", "--token-secret", "Examples:"] {
        assert!(text.contains(flag), "`orders token --help` lacks {flag}:\n{text}");
    }
    for args in [&["completions"][..], &["man"]] {
        let text = help(args);
        assert!(!text.contains("--database-url") && text.contains("Examples:"), "{args:?}:\n{text}");
    }
}

#[test]
fn commands_that_reach_the_deployment_list_its_flags_and_examples() {
    let commands: [&[&str]; 11] = [
        &[],
        &["serve"],
        &["relay"],
        &["relay", "status"],
        &["migrate"],
        &["projections", "pause"],
        &["seed"],
        &["projections", "run"],
        &["projections", "status"],
        &["dlq", "skip"],
        &["stream", "show"],
    ];
    for args in commands {
        let text = help(args);
        for flag in DEPLOYMENT_FLAGS {
            assert!(text.contains(flag), "`orders {} --help` lacks {flag}:\n{text}", args.join(" "));
        }
    }
    for args in [&[][..], &["serve"], &["relay"], &["migrate"], &["seed"], &["projections"], &["dlq"], &["events"]] {
        assert!(help(args).contains("Examples:"), "`orders {} --help` shows no examples", args.join(" "));
    }
    assert!(help(&["serve"]).contains("--front"));
    assert!(!help(&["relay"]).contains("--token-secret"), "relay signs no tokens");
}

#[test]
fn every_ops_command_speaks_json_and_every_destructive_one_takes_yes() {
    let ops: [&[&str]; 16] = [
        &["projections", "list"],
        &["projections", "status"],
        &["projections", "audit"],
        &["projections", "pause"],
        &["projections", "resume"],
        &["projections", "rebuild"],
        &["projections", "replay"],
        &["projections", "reset"],
        &["relay", "status"],
        &["relay", "reset"],
        &["migrate"],
        &["dlq", "list"],
        &["dlq", "retry"],
        &["dlq", "skip"],
        &["events", "verify"],
        &["stream", "show"],
    ];
    for args in ops {
        assert!(help(args).contains("--json"), "`orders {} --help` has no --json", args.join(" "));
    }
    let destructive = [
        ["projections", "rebuild"],
        ["projections", "replay"],
        ["projections", "reset"],
        ["relay", "reset"],
        ["dlq", "skip"],
    ];
    for args in destructive {
        assert!(help(&args).contains("--yes"), "`orders {} --help` has no --yes", args.join(" "));
    }
    let replay = help(&["projections", "replay"]);
    assert!(replay.contains("idempotent") && replay.contains("--since") && replay.contains("--from"), "{replay}");
    let migrate = help(&["migrate"]);
    assert!(migrate.contains("--check") && migrate.contains("--print-sql"), "{migrate}");
}

#[test]
fn completions_and_the_man_page_are_printed() {
    let cases =
        [("bash", "_orders()"), ("zsh", "#compdef orders"), ("fish", "complete -c orders"), ("elvish", "orders")];
    for (shell, marker) in cases {
        let output = orders(&["completions", shell]);
        let script = stdout(&output);
        assert!(output.status.success() && script.contains(marker), "completions {shell}: {script:.300}");
        assert!(script.contains("projections") && script.contains("dlq"), "{shell} completes subcommands");
    }
    let refused = orders(&["completions", "tcsh"]);
    assert_eq!(refused.status.code(), Some(2), "an unknown shell is a usage error");

    let output = orders(&["man"]);
    let page = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        page.contains(".TH orders") && page.contains("completions") && page.contains("DATABASE_URL"),
        "{page:.300}"
    );
}

#[test]
fn exit_codes_name_what_went_wrong() {
    assert_eq!(orders(&["frobnicate"]).status.code(), Some(2), "an unknown command is a usage error");
    assert_eq!(orders(&["token"]).status.code(), Some(2), "a missing argument is a usage error");
    assert_eq!(orders(&["serve", "--chaos", "2"]).status.code(), Some(2));
    let token = orders(&["token", "alice"]);
    assert!(token.status.success() && stdout(&token).trim().contains('.'), "{}", stderr(&token));
}

#[test]
fn embedded_ops_commands_refuse_plainly() {
    for args in
        [&["projections", "status"][..], &["dlq", "list"], &["stream", "show", "order-1"], &["events", "verify"]]
    {
        let output = orders(args);
        assert_eq!(output.status.code(), Some(1), "orders {args:?}");
        let said = stderr(&output);
        assert!(said.contains("cannot reach an embedded server") && said.contains("DATABASE_URL"), "{said}");
        assert!(stdout(&output).is_empty(), "nothing that looks like a result");
    }
}

#[test]
fn serve_front_needs_the_postgres_mode() {
    let output = orders(&["serve", "--front", "--addr", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("--front") && said.contains("DATABASE_URL"), "{said}");
}

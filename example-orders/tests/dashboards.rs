//! `docs/ops/grafana-dashboard.json` and `docs/ops/alerts.yml` use only metrics the app
//! exports: every metric name in their expressions is found in a scrape of a running
//! deployment.

mod support;

use serde_json::Value;
use support::scrape::{deployment_with_traffic, doc, types};

/// The metric names (`tidemark_…`, `orders_…`) in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.split(|c: char| !is_name(c))
        .filter(|word| word.starts_with("tidemark_") || word.starts_with("orders_"))
        .map(str::to_owned)
        .collect()
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&doc("ops/grafana-dashboard.json")).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    exprs
}

/// Every `expr:` of the alert rules, on one line or as an indented block (`expr: |`).
fn alert_exprs() -> Vec<String> {
    let text = doc("ops/alerts.yml");
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else { continue };
        let rest = rest.trim();
        if rest != "|" && rest != ">" {
            exprs.push(rest.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block =
            lines[i + 1..].iter().take_while(|l| l.len() - l.trim_start().len() > indent || l.trim().is_empty());
        exprs.push(block.map(|l| l.trim()).collect::<Vec<_>>().join(" "));
    }
    exprs
}

/// The exported metric a series name belongs to: `x_bucket`, `x_sum` and `x_count` belong
/// to the histogram `x`.
fn exported(name: &str, scraped: &[(String, String)]) -> bool {
    let histogram = |base: &str| scraped.iter().any(|(n, kind)| n == base && kind == "histogram");
    scraped.iter().any(|(n, _)| n == name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| name.strip_suffix(suffix).is_some_and(histogram))
}

#[test]
fn the_expressions_are_found_in_both_files() {
    let dashboard = dashboard_exprs();
    let alerts = alert_exprs();
    assert!(dashboard.len() >= 18, "{dashboard:?}");
    assert!(alerts.len() >= 6, "{alerts:?}");
    assert!(alerts.iter().any(|e| e.contains("tidemark_projection_lag_measured_timestamp_seconds")), "{alerts:?}");
    assert_eq!(metric_names("rate(x_total[5m]) / orders_a{b=\"c\"}"), ["orders_a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported() {
    let (deployed, _, text) = deployment_with_traffic().await;
    let scraped = types(&text);
    for (file, exprs) in [("grafana-dashboard.json", dashboard_exprs()), ("alerts.yml", alert_exprs())] {
        let names: Vec<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
        assert!(!names.is_empty(), "no metric found in {file}");
        for name in names {
            assert!(exported(&name, &scraped), "{file} uses {name}, which the app does not export:\n{text}");
        }
    }
    deployed.stop().await;
}

/// `promtool` (from the prometheus package, which `scripts/test` installs).
fn promtool() -> std::process::Command {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("promtool")).any(|p| p.is_file()))
        .unwrap_or(false);
    assert!(found, "promtool is not on PATH: install it with `apt-get install -y prometheus`");
    std::process::Command::new("promtool")
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    let dir = format!("{}/../docs/ops", env!("CARGO_MANIFEST_DIR"));
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
        let output = promtool().args(args).current_dir(&dir).output().expect("run promtool");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    }
}

#[test]
fn the_dashboard_queries_are_valid_promql() {
    // Each query becomes a recording rule, which `promtool check rules` parses; Grafana's
    // `$__rate_interval` becomes a fixed range.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs().iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "1m");
        rules.push_str(&format!("      - record: dashboard_query_{i}\n        expr: {}\n", serde_json::json!(expr)));
    }
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, rules).expect("write the rules");
    let output = promtool().arg("check").arg("rules").arg(&path).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "a dashboard query is not valid PromQL:\n{text}");
}

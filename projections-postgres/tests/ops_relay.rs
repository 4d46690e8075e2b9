//! `relay status` and `relay reset` on PostgreSQL and JetStream: the leader and its
//! standbys, the checkpoint and how far it is behind; a reset refused while a relay leads
//! or ahead of the log's head, and confirmed otherwise.

mod support;

use std::time::Duration;

use tidemark::LogPosition;
use tidemark_nats::RelayConfig;
use tidemark_projections::{Ops, OpsExit};

use support::deployment::{json, run};
use support::nats::{spawn_relay, Bench};
use support::{append_rounds, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_status_names_the_leader_and_lag_and_reset_moves_the_checkpoint_when_none_leads() {
    let bench = Bench::new(2).await;
    let config = RelayConfig::new("ops").checkpoint_interval(Duration::from_millis(50));
    let relay = bench.relay(config.clone().standby_poll(Duration::from_millis(50))).await;
    let ops = Ops::new(bench.store.clone()).relay(relay.clone()).non_interactive();
    append_rounds(&bench.store, 3, 2, 2).await;
    let head = bench.settled_head().await;

    let (exit, out, err) = run(&ops, &["relay", "status", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    let status = json(&out);
    assert_eq!((status["name"].as_str(), status["leader"].as_str()), (Some("ops"), None), "{out}");
    assert_eq!((status["standbys"].as_u64(), status["lag_events"].as_u64()), (Some(0), Some(12)), "{out}");
    assert_eq!((status["checkpoint"].as_str(), status["head"].as_str()), (Some("0/0"), Some(&*head.to_string())));
    assert!(status["lag_seconds"].as_f64().is_some_and(|s| s > 0.0), "{out}");

    let (first, first_task) = spawn_relay(&relay);
    let (second, second_task) = spawn_relay(&relay);
    wait_until("one relay leads, one stands by, and the checkpoint reaches the head", || async {
        let (_, out, _) = run(&ops, &["relay", "status", "--json"]).await;
        let s = json(&out);
        s["leader"].is_string() && s["standbys"].as_u64() == Some(1) && s["lag_events"].as_u64() == Some(0)
    })
    .await;
    let (_, out, _) = run(&ops, &["relay", "status"]).await;
    assert!(out.starts_with("relay ops\n  leader      pid "), "{out}");
    assert!(out.contains(&format!("  checkpoint  {head}  (log head {head})")), "{out}");
    assert!(out.contains("  standbys    1\n") && out.contains("  lag         0 events"), "{out}");

    let (exit, _, err) = run(&ops, &["relay", "reset", "--to", "0/0", "--yes"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("refusing while a relay leads (pid "), "{err}");
    for (stop, task) in [(first, first_task), (second, second_task)] {
        stop.cancel();
        task.await.expect("joined").expect("clean stop");
    }

    let ahead = LogPosition::new(head.transaction_id, head.sequence + 1).to_string();
    let (exit, _, err) = run(&ops, &["relay", "reset", "--to", &ahead, "--yes"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains(&format!("{ahead} is ahead of the log's head ({head})")), "{err}");
    let (exit, _, err) = run(&ops, &["relay", "reset", "--to", "0/0"]).await;
    assert_eq!(exit, OpsExit::Refused, "{err}");
    assert_eq!(bench.store.load_checkpoint(&config.checkpoint_name()).await.expect("checkpoint"), head);

    let (exit, out, err) = run(&ops, &["relay", "reset", "--to", "0/0", "--yes", "--json"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    let moved = json(&out);
    assert_eq!((moved["from"].as_str(), moved["to"].as_str()), (Some(head.to_string().as_str()), Some("0/0")));
    let (_, out, _) = run(&ops, &["relay", "status", "--json"]).await;
    let status = json(&out);
    assert_eq!((status["leader"].as_str(), status["lag_events"].as_u64()), (None, Some(12)), "{out}");

    let bare = Ops::new(bench.store.clone()).non_interactive();
    let (exit, _, err) = run(&bare, &["relay", "status"]).await;
    assert_eq!(exit, OpsExit::Failed);
    assert!(err.contains("no relay is mounted"), "{err}");
}

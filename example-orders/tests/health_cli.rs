//! `orders relay` and `orders projections run` with `--health-addr`: each answers
//! `/livez` and `/readyz`, and the relay's `/metrics` says it leads.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use example_orders::runtime::{PgDeployment, PgOptions};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tidemark_testkit::{free_port, nats_url, unique_name, Child, TestSchema};

/// GET `path` on `addr`: the status and body, or `None` while nothing listens.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let response = client.get(format!("http://{addr}{path}").parse().expect("uri")).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `/readyz` until it answers 200; returns its body.
async fn ready(addr: SocketAddr, child: &mut Child) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, body)) = get(addr, "/readyz").await {
            return body;
        }
        if let Some(status) = child.exit_status() {
            panic!("the process exited ({status}):\n{}", child.log_tail());
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready after 60 s:\n{}", child.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_projections_run_answer_health_probes_on_their_health_address() {
    let schema = TestSchema::new().await;
    let stream = unique_name("ORDERS");
    let prefix = format!("t.{}", stream.to_lowercase());
    let nats = nats_url().await;
    let options = PgOptions::new(schema.url()).schema(schema.name()).nats_url(&nats).stream(&stream, &prefix);
    let deployment = PgDeployment::connect(options).await.expect("PostgreSQL and NATS");
    deployment.migrate().await.expect("migrate");
    let env = [
        ("DATABASE_URL", schema.url().to_owned()),
        ("ORDERS_SCHEMA", schema.name().to_owned()),
        ("NATS_URL", nats),
        ("ORDERS_JETSTREAM_STREAM", stream.clone()),
        ("ORDERS_SUBJECT_PREFIX", prefix),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (relay_health, relay_metrics, consumers_health) = (free_port(), free_port(), free_port());
    let spawn = |name: &str, args: Vec<String>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
        command.args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        Child::spawn(command, &dir.path().join(format!("{name}.log"))).expect("spawn orders")
    };
    let relay_args = format!("relay --health-addr {} --metrics-addr {}", local(relay_health), local(relay_metrics));
    let mut relay = spawn("relay", relay_args.split(' ').map(str::to_owned).collect());
    let consumers_args = format!("projections run --health-addr {}", local(consumers_health));
    let mut consumers = spawn("consumers", consumers_args.split(' ').map(str::to_owned).collect());

    let body = ready(local(relay_health), &mut relay).await;
    assert!(body.contains("\"check\":\"relay\"") && body.contains("leading"), "{body}");
    let body = ready(local(consumers_health), &mut consumers).await;
    assert!(body.contains("partitions held"), "{body}");
    for addr in [local(relay_health), local(consumers_health)] {
        assert_eq!(get(addr, "/livez").await.map(|(status, _)| status), Some(200));
    }
    let (_, metrics) = get(local(relay_metrics), "/metrics").await.expect("the relay's metrics");
    assert!(metrics.contains("# TYPE tidemark_relay_leader gauge\ntidemark_relay_leader 1"), "{metrics}");

    relay.interrupt().await;
    consumers.interrupt().await;
    let jetstream = async_nats::jetstream::new(deployment.client.clone().expect("NATS"));
    jetstream.delete_stream(&stream).await.expect("delete the stream");
}

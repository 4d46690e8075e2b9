//! `NatsServer` and `nats_url`: real nats-server processes, checked through their INFO greeting.

use tidemark_testkit::{nats_info, nats_url, NatsServer};

fn port_of(url: &str) -> u16 {
    let port = url.rsplit(':').next().expect("url has a port");
    port.trim_end_matches('/').parse().expect("numeric port")
}

#[tokio::test]
async fn kill_and_restart_on_the_same_port() {
    let mut nats = NatsServer::start().await;
    let port = nats.port();
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
    let info = nats_info(port).await.unwrap();
    assert!(info.contains("\"jetstream\":true"), "{info}");

    nats.kill();
    assert!(nats_info(port).await.is_err(), "a killed server greeted a client");

    nats.restart().await;
    assert_eq!(nats.port(), port);
    assert!(nats_info(port).await.unwrap().contains("\"jetstream\":true"));

    nats.stop().await;
    assert!(nats_info(port).await.is_err(), "a stopped server greeted a client");
    nats.restart().await;
    assert!(nats_info(port).await.is_ok());

    drop(nats);
    assert!(nats_info(port).await.is_err(), "a dropped server greeted a client");
}

#[tokio::test]
async fn shared_server_speaks_nats_with_jetstream() {
    let url = nats_url().await;
    let info = nats_info(port_of(&url)).await.unwrap();
    assert!(info.contains("\"jetstream\":true"), "{info}");
    assert_eq!(nats_url().await, url, "the choice is made once per process");
}

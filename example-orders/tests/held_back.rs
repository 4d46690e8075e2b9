//! `tidemark_relay_held_back_seconds`: while a transaction that wrote an event stays open,
//! events committed after it are held back from the log, and the gauge grows; once it
//! commits, the gauge drops to 0.

mod support;

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};
use sqlx::{Connection, PgConnection};
use support::scrape::{deployment_with_traffic, scrape};
use support::{call, order_body, token};

/// The gauge's value in a scrape.
async fn held_back(addr: SocketAddr) -> f64 {
    let text = scrape(addr).await;
    let line = text.lines().find(|line| line.starts_with("tidemark_relay_held_back_seconds ")).expect("the gauge");
    line.rsplit(' ').next().and_then(|value| value.parse().ok()).expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_held_back_gauge_grows_while_an_open_transaction_holds_the_log_back() {
    let (deployed, addr, _) = deployment_with_traffic().await;
    assert_eq!(held_back(addr).await, 0.0);
    let mut holder = PgConnection::connect(deployed.schema.url()).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut holder).await.expect("begin");
    let insert = format!(
        "INSERT INTO \"{}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         VALUES ($1, 'held-1', 1, 'Ticked', 1, '{{}}')",
        deployed.schema.name()
    );
    sqlx::query(&insert).bind(uuid::Uuid::now_v7()).execute(&mut holder).await.expect("insert in the open transaction");
    // An order committed after it: readable only once the open transaction ends.
    let user = token("held", false);
    let reply =
        call(&deployed.router, Method::POST, "/orders", Some(&user), &[], Some(order_body("tea", 1, 100))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    support::wait_until("the gauge passes 1 s", || async move { held_back(addr).await > 1.0 }).await;

    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("rollback");
    support::wait_until("the gauge is back at 0", || async move { held_back(addr).await == 0.0 }).await;
    deployed.stop().await;
}

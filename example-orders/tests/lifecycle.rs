//! Deleting an order: an admin's `DELETE /orders/{id}` tombstones its stream, after which
//! reads and commands answer 410 Gone; `orders stream archive` moves deleted orders'
//! events into the archive table, and `orders stream show` still reads them.

mod support;

use std::process::Command;

use axum::http::{Method, StatusCode};
use example_orders::app::AppConfig;
use example_orders::runtime::{PgDeployment, PgOptions};
use serde_json::json;
use tidemark::{EventStore, ExpectedVersion, NewEvent, StreamId};
use tidemark_testkit::{nats_url, unique_name, TestSchema};

use support::{call, place, start, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_order_answers_410_to_reads_and_commands() {
    let (app, router) = start(AppConfig::default()).await;
    let (ada, ops) = (token("ada", false), token("ops", true));
    let (order_id, _) = place(&router, &ada, "tea").await;
    let path = format!("/orders/{order_id}");
    let read = call(&router, Method::GET, &format!("{path}?version=1&wait_ms=10000"), Some(&ada), &[], None).await;
    assert_eq!(read.status, StatusCode::OK, "{read:?}");

    let by_customer = call(&router, Method::DELETE, &path, Some(&ada), &[], None).await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN, "only admins delete orders");
    let deleted = call(&router, Method::DELETE, &path, Some(&ops), &[], None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");

    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (Method::GET, format!("{path}?version=1&wait_ms=1000"), None),
        (Method::POST, format!("{path}/cancel"), Some(json!({ "reason": "changed my mind" }))),
        (Method::POST, format!("{path}/confirm"), Some(json!({}))),
        (Method::DELETE, path.clone(), None),
    ] {
        let who = if method == Method::DELETE { &ops } else { &ada };
        let reply = call(&router, method.clone(), &path, Some(who), &[], body).await;
        assert_eq!(reply.status, StatusCode::GONE, "{method} {path}: {reply:?}");
        assert_eq!(reply.body["type"], "/problems/gone", "{method} {path}");
    }
    let unknown = format!("/orders/{}", uuid::Uuid::now_v7());
    let missing = call(&router, Method::DELETE, &unknown, Some(&ops), &[], None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "no such order to delete");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_stream_tombstone_and_archive_work_on_a_deployment() {
    let schema = TestSchema::new().await;
    let stream_name = unique_name("ORDERS");
    let prefix = format!("t.{}", stream_name.to_lowercase());
    let nats = nats_url().await;
    let options = PgOptions::new(schema.url()).schema(schema.name()).nats_url(&nats).stream(&stream_name, &prefix);
    let deployment = PgDeployment::connect(options).await.expect("PostgreSQL and NATS");
    deployment.migrate().await.expect("migrate");
    let order = StreamId::new("order-lifecycle-1").expect("stream id");
    let note = || NewEvent::new("Note", 1, serde_json::value::to_raw_value(&json!({ "n": 1 })).expect("json"));
    let request = tidemark::AppendRequest::new(order.clone(), ExpectedVersion::NoStream, vec![note(), note()]);
    deployment.store.append(request).await.expect("append");

    let env = [
        ("DATABASE_URL", schema.url().to_owned()),
        ("ORDERS_SCHEMA", schema.name().to_owned()),
        ("NATS_URL", nats),
        ("ORDERS_JETSTREAM_STREAM", stream_name),
        ("ORDERS_SUBJECT_PREFIX", prefix),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let orders = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_orders"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("orders runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (output.status.code(), text(&output.stdout), text(&output.stderr))
    };
    let (code, out, err) = orders(&["stream", "tombstone", order.as_str(), "--yes", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).expect("json")["tombstone_version"], 3);
    let (code, _, err) = orders(&["stream", "tombstone", order.as_str(), "--yes"]);
    assert_eq!(code, Some(3), "a second tombstone is refused: {err}");

    // No relay has published anything yet: nothing may move.
    let (code, out, err) = orders(&["stream", "archive", "--older-than", "0s", "--yes", "--json"]);
    assert_eq!((code, out.trim()), (Some(0), r#"{"events":0,"streams":0}"#), "{err}");
    // Once the relay's checkpoint is past the tombstone, the order's two events move.
    let head = deployment.store.log_head().await.expect("head").expect("events");
    deployment.store.save_checkpoint("relay:orders", head).await.expect("checkpoint");
    let (code, out, err) = orders(&["stream", "archive", "--older-than", "90d", "--yes", "--json"]);
    assert_eq!((code, out.trim()), (Some(0), r#"{"events":0,"streams":0}"#), "too young: {err}");
    let (code, out, err) = orders(&["stream", "archive", "--older-than", "0s", "--yes", "--json"]);
    assert_eq!((code, out.trim()), (Some(0), r#"{"events":2,"streams":1}"#), "{err}");
    let archived: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".archived_events", schema.name()))
        .fetch_one(schema.pool())
        .await
        .expect("count");
    assert_eq!(archived, 2);
    let (code, out, err) = orders(&["stream", "show", order.as_str()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3, "the archived events and the tombstone still read: {out}");
    let (code, _, err) = orders(&["stream", "archive", "--older-than", "soon", "--yes"]);
    assert_eq!(code, Some(2), "a malformed age is a usage error: {err}");
}

//! Deleting an order: an admin's `DELETE /orders/{id}` tombstones its stream, after which
//! reads and commands answer 410 Gone; `orders stream archive` moves deleted orders'
//! events into the archive table, and `orders stream show` still reads them.

mod support;

use std::process::Command;

use axum::http::{Method, StatusCode};
use example_orders::app::AppConfig;
use example_orders::runtime::{PgDeployment, PgOptions};
use serde_json::json;
use tidemark::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
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

/// A migrated deployment in a schema and JetStream stream of its own, and a way to run
/// the `orders` binary against it.
async fn deployment() -> (TestSchema, PgDeployment, impl Fn(&[&str]) -> (Option<i32>, String, String)) {
    let schema = TestSchema::new().await;
    let stream_name = unique_name("ORDERS");
    let prefix = format!("t.{}", stream_name.to_lowercase());
    let nats = nats_url().await;
    let options = PgOptions::new(schema.url()).schema(schema.name()).nats_url(&nats).stream(&stream_name, &prefix);
    let deployment = PgDeployment::connect(options).await.expect("PostgreSQL and NATS");
    deployment.migrate().await.expect("migrate");
    let env = [
        ("DATABASE_URL", schema.url().to_owned()),
        ("ORDERS_SCHEMA", schema.name().to_owned()),
        ("NATS_URL", nats),
        ("ORDERS_JETSTREAM_STREAM", stream_name),
        ("ORDERS_SUBJECT_PREFIX", prefix),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let orders = move |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_orders"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("orders runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (output.status.code(), text(&output.stdout), text(&output.stderr))
    };
    (schema, deployment, orders)
}

fn note(tenant: Option<&str>) -> NewEvent {
    let event = NewEvent::new("Note", 1, serde_json::value::to_raw_value(&json!({ "n": 1 })).expect("json"));
    match tenant {
        Some(tenant) => event.with_metadata(Metadata::new().with_tenant(tenant)),
        None => event,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_stream_tombstone_and_archive_work_on_a_deployment() {
    let (schema, deployment, orders) = deployment().await;
    let order = StreamId::new("order-lifecycle-1").expect("stream id");
    let request = tidemark::AppendRequest::new(order.clone(), ExpectedVersion::NoStream, vec![note(None), note(None)]);
    deployment.store.append(request).await.expect("append");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_commands_with_a_tenant_see_and_touch_only_that_tenants_streams() {
    let (schema, deployment, orders) = deployment().await;
    for (id, tenant) in [("order-acme-1", "acme"), ("order-acme-2", "acme"), ("order-globex-1", "globex")] {
        let stream = StreamId::new(id).expect("stream id");
        let events = vec![note(Some(tenant)), note(Some(tenant))];
        let request = tidemark::AppendRequest::new(stream, ExpectedVersion::NoStream, events);
        deployment.store.append(request).await.expect("append");
    }
    let versions = || async {
        let sql = format!(
            "SELECT stream_id, max(stream_version) FROM \"{}\".events GROUP BY stream_id ORDER BY stream_id",
            schema.name()
        );
        sqlx::query_as::<_, (String, i64)>(&sql).fetch_all(schema.pool()).await.expect("versions")
    };
    let before = versions().await;

    // Reading: globex's stream does not exist for acme.
    let (code, out, err) = orders(&["stream", "show", "order-globex-1", "--tenant", "acme"]);
    assert_eq!(code, Some(3), "another tenant's stream reads as empty: {out}{err}");
    assert!(!out.contains("Note"), "nothing of it is printed: {out}");
    let (code, out, err) = orders(&["stream", "show", "order-acme-1", "--tenant", "acme"]);
    assert_eq!((code, out.lines().count()), (Some(0), 2), "{out}{err}");
    // `events verify` reads acme's four events only (none decodes: `Note` is no order event).
    let (_, out, err) = orders(&["events", "verify", "--tenant", "acme", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(report["events"], 4, "{report}");
    let streams: Vec<&str> =
        report["failures"].as_array().expect("failures").iter().filter_map(|f| f["stream_id"].as_str()).collect();
    assert!(streams.iter().all(|s| s.starts_with("order-acme-")), "{streams:?}");

    // Writing: a tombstone of globex's stream is refused and changes nothing.
    let (code, out, err) = orders(&["stream", "tombstone", "order-globex-1", "--tenant", "acme", "--yes"]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("tenant"), "the refusal says why: {err}");
    assert_eq!(versions().await, before, "nothing was written");
    let (code, out, err) = orders(&["stream", "archive", "--older-than", "0s", "--tenant", "acme", "--yes"]);
    assert_eq!(code, Some(2), "archiving is for every tenant at once: {out}{err}");
    // acme's own stream is deleted, its tombstone stamped with acme.
    let (code, out, err) = orders(&["stream", "tombstone", "order-acme-2", "--tenant", "acme", "--yes", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let sql = format!(
        "SELECT event_type, tenant FROM \"{}\".events WHERE stream_id = 'order-acme-2' AND stream_version = 3",
        schema.name()
    );
    let tombstone: (String, Option<String>) = sqlx::query_as(&sql).fetch_one(schema.pool()).await.expect("tombstone");
    assert_eq!(tombstone, ("_Tombstone".to_owned(), Some("acme".to_owned())));
    let (code, _, err) = orders(&["stream", "show", "order-acme-1", "--tenant", "no tenant"]);
    assert_eq!(code, Some(1), "a malformed tenant is refused: {err}");
}

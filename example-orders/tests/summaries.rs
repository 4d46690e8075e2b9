//! On PostgreSQL + JetStream the app publishes each order's summary to a JetStream KV
//! bucket; another service reads it with a plain async-nats KV client, and finds the same
//! document as the PostgreSQL read model, updated as the order changes.

mod support;

use axum::http::{Method, StatusCode};
use example_orders::read_models::ORDERS;
use serde_json::{json, Value};
use tidemark_projections::DocumentReader;
use tidemark_testkit::nats_url;

use support::postgres::deploy;
use support::{call, outcome, place, token, wait_until};

/// The summary of `order_id` in `bucket` once it reflects `version`, read as another
/// service would.
async fn summary_at(bucket: &async_nats::jetstream::kv::Store, order_id: &str, version: u64) -> Value {
    let key = format!("order-{order_id}");
    let read = || async {
        let value = bucket.get(&key).await.expect("get")?;
        Some(serde_json::from_slice::<Value>(&value).expect("JSON"))
    };
    wait_until("the summary reaches the version", || async {
        read().await.is_some_and(|summary| summary["version"] == json!(version))
    })
    .await;
    read().await.expect("the summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placed_orders_can_be_read_from_the_summary_bucket_with_a_plain_kv_client() {
    let app = deploy(false).await;
    let ada = token("ada", false);
    let mut orders = Vec::new();
    for product in ["tea", "coffee", "cocoa"] {
        orders.push(place(&app.router, &ada, product).await.0);
    }
    let client = async_nats::connect(nats_url().await).await.expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let name = app.deployment.options.summary_bucket();
    let bucket = jetstream.get_key_value(&name).await.expect("the summary bucket");

    let read_models = app.running.app.read_models();
    for order_id in &orders {
        let summary = summary_at(&bucket, order_id, 1).await;
        assert_eq!(
            (summary["order_id"].as_str(), summary["status"].as_str()),
            (Some(order_id.as_str()), Some("placed"))
        );
        assert_eq!((summary["customer"].as_str(), summary["total_minor"].as_i64()), (Some("ada"), Some(900)));
        let stored = || async { read_models.document(ORDERS, ORDERS, order_id).await.expect("read") };
        wait_until("the read model has the order", || async { stored().await.is_some() }).await;
        assert_eq!(Some(summary), stored().await, "the bucket and the PostgreSQL read model differ");
    }

    let confirm = format!("/orders/{}/confirm", orders[0]);
    let reply = call(&app.router, Method::POST, &confirm, Some(&ada), &[], Some(json!({}))).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let record = outcome(&app.router, &ada, reply.body["status_url"].as_str().expect("status url")).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let summary = summary_at(&bucket, &orders[0], 2).await;
    assert_eq!(summary["status"].as_str(), Some("confirmed"), "{summary}");
    let keys = bucket.keys().await.expect("keys");
    let count = futures_util::StreamExt::count(keys).await;
    assert_eq!(count, orders.len(), "one key per order, none extra");

    app.stop().await;
    assert!(jetstream.get_key_value(&name).await.is_err(), "the test's bucket is left behind");
}

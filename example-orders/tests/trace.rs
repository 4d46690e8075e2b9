//! One W3C trace followed end to end on PostgreSQL + JetStream: an HTTP command with a
//! known `traceparent` → its stored event's metadata (plain SQL) → the relay's JetStream
//! message header (a plain consumer) → the process manager's follow-up command → its
//! stored event.

mod support;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use tidemark::trace::TraceParent;

use support::postgres::deploy;
use support::{call, order_body, outcome, token, wait_until, DEADLINE};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const INCOMING: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// The `traceparent` recorded in the metadata of a stream's events, read with plain SQL.
async fn stored_traceparents(pool: &PgPool, schema: &str, stream: &str) -> Vec<(String, Option<String>)> {
    let sql = format!(
        "SELECT event_type, metadata->'headers'->>'traceparent' FROM {schema}.events \
         WHERE stream_id = $1 ORDER BY stream_version"
    );
    sqlx::query_as(&sql).bind(stream).fetch_all(pool).await.expect("read the events")
}

/// The `traceparent` header of the JetStream message of a stream's event of `event_type`,
/// read with an ordered consumer of the whole stream.
async fn published_traceparent(client: &async_nats::Client, name: &str, stream: &str, event_type: &str) -> String {
    let jetstream = async_nats::jetstream::new(client.clone());
    let consumer = jetstream
        .get_stream(name)
        .await
        .expect("the stream")
        .create_consumer(OrderedConfig::default())
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(message) = messages.next().await {
            let message = message.expect("a message");
            let headers = message.headers.as_ref().expect("headers");
            let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
            let is_it = header("Tidemark-Stream-Id").as_deref() == Some(stream)
                && header("Tidemark-Event-Type").as_deref() == Some(event_type);
            if is_it {
                return header("traceparent");
            }
        }
        None
    });
    found.await.expect("the event is published in time").expect("the message has a traceparent header")
}

fn parsed(traceparent: Option<&str>, what: &str) -> TraceParent {
    let text = traceparent.unwrap_or_else(|| panic!("{what} records no traceparent"));
    TraceParent::parse(text).unwrap_or_else(|| panic!("{what}: {text:?} is not a valid traceparent"))
}

async fn step(router: &axum::Router, who: &str, path: &str, body: serde_json::Value, traceparent: &str) -> String {
    let headers = [("traceparent", traceparent)];
    let reply = call(router, Method::POST, path, Some(who), &headers, Some(body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{path}: {reply:?}");
    let record = outcome(router, who, reply.body["status_url"].as_str().expect("status url")).await;
    assert_eq!(record["status"], "succeeded", "{path}: {record}");
    reply.body["entity_id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_follows_a_command_through_the_relay_to_the_process_managers_command() {
    let app = deploy(false).await;
    let (router, ada) = (&app.router, token("ada", false));
    let pool = PgPool::connect(app.schema.url()).await.expect("PostgreSQL");
    let schema = app.schema.name().to_owned();

    let order_id = step(router, &ada, "/orders", order_body("tea", 2, 450), INCOMING).await;
    step(router, &ada, &format!("/orders/{order_id}/confirm"), json!({}), INCOMING).await;
    let pay = json!({ "payment_id": "p-1", "amount_minor": 900 });
    step(router, &ada, &format!("/orders/{order_id}/pay"), pay, INCOMING).await;

    // The stored events: the request's trace, each event a span of its own.
    let order_stream = format!("order-{order_id}");
    let stored = stored_traceparents(&pool, &schema, &order_stream).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    let paid = stored.iter().find(|(t, _)| t == "OrderPaid").expect("OrderPaid stored");
    let paid = parsed(paid.1.as_deref(), "OrderPaid");
    assert_eq!(paid.trace_id_hex(), TRACE_ID);
    assert_ne!(paid.to_string(), INCOMING, "the command is a child span of the request");

    // The relay publishes the stored context as the `traceparent` header.
    let (client, name) = (app.deployment.client.as_ref().expect("NATS"), &app.deployment.options.stream);
    let header = published_traceparent(client, name, &order_stream, "OrderPaid").await;
    assert_eq!(header, paid.to_string());

    // The process manager's follow-up command continues the trace with a new span.
    let fulfilment_stream = format!("fulfilment-{order_id}");
    wait_until("the process manager requests the fulfilment", || async {
        !stored_traceparents(&pool, &schema, &fulfilment_stream).await.is_empty()
    })
    .await;
    let requested = stored_traceparents(&pool, &schema, &fulfilment_stream).await;
    let requested = parsed(requested[0].1.as_deref(), "FulfilmentRequested");
    assert_eq!(requested.trace_id_hex(), TRACE_ID);
    assert_ne!(requested.span_id, paid.span_id);
    assert_ne!(requested.span_id, parsed(Some(INCOMING), "the request").span_id);

    // An invalid traceparent is ignored: the command succeeds and starts a trace of its own.
    let ops = token("ops", true);
    let dispatch = json!({ "tracking": "DHL-7" });
    step(router, &ops, &format!("/fulfilments/{order_id}/dispatch"), dispatch, "00-nonsense").await;
    let dispatched = stored_traceparents(&pool, &schema, &fulfilment_stream).await;
    let dispatched = parsed(dispatched.last().and_then(|(_, t)| t.as_deref()), "FulfilmentDispatched");
    assert_ne!(dispatched.trace_id_hex(), TRACE_ID);

    // …which the ship command it causes continues.
    wait_until("the process manager ships the order", || async {
        stored_traceparents(&pool, &schema, &order_stream).await.len() == 4
    })
    .await;
    let shipped = stored_traceparents(&pool, &schema, &order_stream).await;
    let shipped = parsed(shipped[3].1.as_deref(), "OrderShipped");
    assert_eq!(shipped.trace_id, dispatched.trace_id);
    assert_ne!(shipped.span_id, dispatched.span_id);
    pool.close().await;
    app.stop().await;
}

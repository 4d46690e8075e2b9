//! Personal data in the sample app on PostgreSQL + JetStream: an order's delivery contact
//! is stored sealed with the customer's key, shown in the order read model, and after
//! `forget` (what `orders forget CUSTOMER --yes` runs) shown as "[forgotten]", with no copy
//! of it left readable in any table of the deployment's schemas.

mod support;

use axum::http::{Method, StatusCode};
use axum::Router;
use example_orders::cli::{Cli, Command};
use serde_json::{json, Value};
use tidemark::FORGOTTEN;

use support::postgres::deploy;
use support::{call, order_body, outcome, token};

const NAME: &str = "Hedy Lamarr";
const ADDRESS: &str = "12 Frequency Lane, Vienna";

fn with_delivery(name: &str, address: &str) -> Value {
    let mut body = order_body("tea", 2, 450);
    body["delivery"] = json!({ "name": name, "address": address });
    body
}

/// Places an order; returns its id and the command's final record.
async fn place(router: &Router, who: &str, body: Value) -> (String, Value) {
    let reply = call(router, Method::POST, "/orders", Some(who), &[], Some(body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let record = outcome(router, who, reply.body["status_url"].as_str().expect("status url")).await;
    (reply.body["entity_id"].as_str().expect("entity id").to_owned(), record)
}

async fn delivery(router: &Router, who: &str, order_id: &str) -> Value {
    let path = format!("/orders/{order_id}?version=1&wait_ms=20000");
    let reply = call(router, Method::GET, &path, Some(who), &[], None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["delivery"].clone()
}

/// Every row of every table of the store's schema and its projections' schemas, as text.
async fn every_row(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE (table_schema = $1 OR starts_with(table_schema, $1 || '_')) AND table_type = 'BASE TABLE'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut rows = Vec::new();
    for (schema, table) in tables {
        let sql = format!("SELECT '{schema}.{table}: ' || t::text FROM \"{schema}\".\"{table}\" t");
        match sqlx::query_scalar::<_, String>(&sql).fetch_all(pool).await {
            Ok(found) => rows.extend(found),
            // A rebuild's shadow table, dropped (swapped in) since it was listed.
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42P01") => {}
            Err(e) => panic!("dump {schema}.{table}: {e}"),
        }
    }
    rows
}

fn holding<'a>(rows: &'a [String], text: &str) -> Vec<&'a String> {
    rows.iter().filter(|r| r.contains(text)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_customers_delivery_contact_reads_as_forgotten_and_is_nowhere_in_clear() {
    let app = deploy(false).await;
    let (router, ada, bob) = (&app.router, token("ada", false), token("bob", false));
    let (ada_order, record) = place(router, &ada, with_delivery(NAME, ADDRESS)).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let (bob_order, _) = place(router, &bob, with_delivery("Bob Kahn", "1 Packet Road")).await;
    assert_eq!(delivery(router, &ada, &ada_order).await, json!({ "name": NAME, "address": ADDRESS }));
    assert_eq!(delivery(router, &bob, &bob_order).await["name"], "Bob Kahn");

    let (pool, schema) = (app.schema.pool(), app.schema.name());
    let before = every_row(pool, schema).await;
    assert!(!holding(&before, "Frequency Lane").is_empty(), "the read model shows the address");
    let events: Vec<&String> = before.iter().filter(|r| r.starts_with(&format!("{schema}.events:"))).collect();
    assert!(events.iter().any(|r| r.contains("ada") && r.contains("tmk:pd1:")), "{events:?}");
    assert!(!events.iter().any(|r| r.contains(NAME) || r.contains("Frequency")), "events hold only ciphertext");

    let report = app.deployment.forget_customer("ada").await.expect("forget");
    assert!(report.key_destroyed);
    assert_eq!(report.streams, [format!("order-{ada_order}")]);
    let forgotten = json!({ "name": FORGOTTEN, "address": FORGOTTEN });
    assert_eq!(delivery(router, &ada, &ada_order).await, forgotten);
    assert_eq!(delivery(router, &bob, &bob_order).await["name"], "Bob Kahn", "other customers keep theirs");
    let after = every_row(pool, schema).await;
    for text in [NAME, "Frequency Lane", "Hedy"] {
        assert!(holding(&after, text).is_empty(), "{text:?} left in {:?}", holding(&after, text));
    }

    // A forgotten customer may still order without a delivery contact, but not record a
    // new one.
    let (_, without) = place(router, &ada, order_body("mug", 1, 1200)).await;
    assert_eq!(without["status"], "succeeded", "{without}");
    let (_, with) = place(router, &ada, with_delivery(NAME, ADDRESS)).await;
    assert_eq!((&with["status"], &with["error"]["code"]), (&json!("failed"), &json!("forgotten")), "{with}");
    assert!(holding(&every_row(pool, schema).await, "Frequency Lane").is_empty(), "the refused order wrote nothing");
    app.stop().await;
}

#[test]
fn forget_is_a_command_that_takes_yes() {
    let cli = Cli::try_parse_from(["orders", "forget", "ada", "--yes"]).expect("parses");
    let Some(Command::Forget(args)) = cli.command else { panic!("not forget") };
    assert_eq!((args.customer.as_str(), args.yes), ("ada", true));
}

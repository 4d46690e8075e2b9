//! A measurement, not a check: appends per second through a `ShreddingStore` (two personal
//! fields sealed per event, keys looked up in `personal_keys`) against the same appends to
//! the bare store, alternated in one run. Run it with
//! `cargo test --release -p tidemark-postgres --test shredding_cost -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tidemark::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, PersonalData, PersonalFields, ShreddingStore, StreamId,
};
use tidemark_postgres::{PgEventStore, PgPersonalKeys, PgStoreConfig};
use tidemark_testkit::TestSchema;

const WRITERS: usize = 8;
const APPENDS: usize = 300;
const CUSTOMERS: usize = 100;

async fn appends_per_second<S: EventStore + Clone + 'static>(store: &S, label: &str) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let label = label.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..APPENDS {
                let customer = format!("c-{writer}-{}", i % CUSTOMERS);
                let payload = json!({"customer": customer, "name": "Grace Hopper", "address": "1 Compiler Road"});
                let event = NewEvent::new("Registered", 1, serde_json::value::to_raw_value(&payload).expect("json"));
                let stream = StreamId::new(format!("{label}-{}", uuid::Uuid::now_v7().simple())).expect("id");
                store.append(AppendRequest::new(stream, ExpectedVersion::NoStream, vec![event])).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    (WRITERS * APPENDS) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --release -- --ignored --nocapture"]
async fn sealing_cost_per_append() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let fields = PersonalFields::new("Registered", "/customer").field("/name").field("/address");
    let data = Arc::new(PersonalData::new([fields]).expect("registry"));
    let keys = PgPersonalKeys::new(schema.pool().clone(), schema.name(), data.clone()).expect("keys");
    let sealed = ShreddingStore::new(store.clone(), data, keys);
    // Warm-up: makes every customer's key, so the rounds measure lookups, not key creation.
    appends_per_second(&sealed, "warm").await;
    // The order alternates, so neither side always runs first.
    for round in 1..=4 {
        let (raw, shredded) = if round % 2 == 1 {
            let raw = appends_per_second(&store, "raw").await;
            (raw, appends_per_second(&sealed, "sealed").await)
        } else {
            let shredded = appends_per_second(&sealed, "sealed").await;
            (appends_per_second(&store, "raw").await, shredded)
        };
        println!("round {round}: raw {raw:.0}/s, sealed {shredded:.0}/s, ratio {:.2}", shredded / raw);
    }
}

//! Measures how fast the relay drains pre-stored events into JetStream.
//!
//! ```sh
//! cargo run --release -p tidemark-nats --example relay_throughput -- [events] [batch_size] [max_in_flight]
//! ```
//!
//! Uses the test servers (`DATABASE_URL` / `NATS_URL`, the local services, or throwaway
//! ones), a fresh schema and a fresh stream, which are removed afterwards.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::value::RawValue;
use tidemark::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StreamId};
use tidemark_nats::{NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::{nats_url, unique_name, TestSchema};
use tokio_util::sync::CancellationToken;

const PER_APPEND: usize = 100;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (events, batch, in_flight) = (arg(1, 100_000), arg(2, 2000), arg(3, 1024));

    let schema = TestSchema::new().await;
    let store = PgEventStore::from_pool(schema.pool().clone(), PgStoreConfig::default().schema(schema.name()))?;
    store.migrate().await?;
    let started = Instant::now();
    let appends = (0..events.div_ceil(PER_APPEND)).map(|n| {
        let store = store.clone();
        async move { store.append(request(n)).await }
    });
    for outcome in futures_util::stream::iter(appends).buffer_unordered(8).collect::<Vec<_>>().await {
        outcome?;
    }
    println!("stored {events} events in {:.1?}", started.elapsed());

    let name = unique_name("bench");
    let scheme = SubjectScheme::new(format!("bench.{}", name.to_lowercase()), 16)?;
    let config = RelayConfig::new("bench").subjects(scheme).batch_size(batch).max_in_flight(in_flight);
    let relay = NatsRelay::new(store.clone(), async_nats::connect(nats_url().await).await?, config)?;
    relay.ensure_stream(&StreamSettings::new(name.clone())).await?;
    let head = store.log_head().await?;

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn({
        let (relay, shutdown) = (relay.clone(), shutdown.clone());
        async move { relay.run(shutdown).await }
    });
    while relay.status().last_acked < head {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await??;
    let status = relay.status();
    println!(
        "relayed {} events in {elapsed:.2?}: {:.0} events/s (batch {batch}, in flight {in_flight}, duplicates {})",
        status.acked,
        status.acked as f64 / elapsed.as_secs_f64(),
        status.duplicates
    );
    relay.jetstream().delete_stream(&name).await?;
    Ok(())
}

fn request(n: usize) -> AppendRequest {
    let events = (0..PER_APPEND).map(|i| {
        let payload = format!(
            r#"{{"order":{n},"line":{i},"sku":"SKU-{i:05}","quantity":3,"cents":1299,"note":"{}"}}"#,
            "x".repeat(160)
        );
        NewEvent::new("LineAdded", 1, RawValue::from_string(payload).unwrap_or_else(|_| unreachable!()))
    });
    let stream = StreamId::for_entity("order", n).unwrap_or_else(|_| unreachable!());
    AppendRequest::new(stream, ExpectedVersion::NoStream, events.collect())
}

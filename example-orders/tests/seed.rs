//! `orders seed` on the embedded store: a realistic, reproducible mix through the command
//! handlers, every order where its journey says, every event readable.

use std::collections::BTreeMap;

use example_orders::domain::{fulfilment_stream, order_stream, OrderStatus};
use example_orders::runtime::{embedded_backend, Handlers};
use example_orders::seed::{seed, Journey, SeedOptions};
use tidemark::{EventStore, InMemoryEventStore, LogPosition};
use tidemark_projections::OpsExit;

async fn seeded(rng_seed: u64) -> (InMemoryEventStore, BTreeMap<Journey, usize>) {
    let store = InMemoryEventStore::new();
    let mut options = SeedOptions::new(60);
    options.rng_seed = rng_seed;
    let report = seed(&Handlers::new(&store).expect("handlers"), &options).await.expect("seed");
    (store, report.journeys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_places_a_reproducible_mix_of_journeys() {
    let (store, journeys) = seeded(42).await;
    assert_eq!(journeys.values().sum::<usize>(), 60, "{journeys:?}");
    assert!(journeys.len() >= 5, "most journeys are taken: {journeys:?}");
    assert_eq!(seeded(42).await.1, journeys, "the same seed, the same mix");

    let handlers = Handlers::new(&store).expect("handlers");
    let events = store.read_log(LogPosition::START, 10_000).await.expect("log");
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for stream in events.iter().filter(|e| e.stream_version.0 == 1 && e.stream_id.category() == "order") {
        let id = example_orders::domain::order_id_of(&stream.stream_id).expect("an order stream");
        let order = handlers.orders.load(&order_stream(id)).await.expect("load").state;
        *statuses.entry(format!("{:?}", order.status())).or_default() += 1;
        if order.status() == OrderStatus::Shipped {
            let fulfilment = handlers.fulfilments.load(&fulfilment_stream(id)).await.expect("load").state;
            assert_eq!(fulfilment.tracking(), order.tracking(), "shipped with the dispatched parcel's tracking");
        }
    }
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (journey, count) in &journeys {
        let status = match journey {
            Journey::CancelledEarly | Journey::CancelledAfterPayment => "Cancelled".to_owned(),
            other => format!("{other:?}"),
        };
        *expected.entry(status).or_default() += count;
    }
    assert_eq!(statuses, expected, "each order ends where its journey says");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_events_pass_events_verify() {
    let backend = embedded_backend(true, 2).await.expect("backend");
    seed(&backend.handlers().expect("handlers"), &SeedOptions::new(20)).await.expect("seed");
    let command = tidemark_projections::OpsCommand::Events(tidemark_projections::EventsCommand::Verify(
        tidemark_projections::Output { json: false },
    ));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = backend.ops().expect("ops").run(&command, &mut out, &mut err).await;
    assert_eq!(exit, OpsExit::Done, "{}", String::from_utf8_lossy(&out));
}

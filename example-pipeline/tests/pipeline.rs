//! The two services on a real PostgreSQL and nats-server: every paid order gets exactly one
//! shipment, unpaid ones none, and a shipping instance that stops leaves its partitions to
//! the other.

use std::time::Duration;

use example_pipeline::{shipment_of, Intake, Settings, Shipping};
use tidemark::{EventStore, StreamId, StreamVersion};
use tidemark_testkit::{nats_url, unique_name, TestSchema};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

fn spawn_shipping(shipping: &Shipping) -> (CancellationToken, JoinHandle<Result<(), example_pipeline::Error>>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (shipping, stop) = (shipping.clone(), stop.clone());
        async move { shipping.run(stop).await }
    });
    (stop, task)
}

async fn shipments(intake: &Intake, order: &StreamId) -> Vec<String> {
    let stream = shipment_of(order).expect("shipment id");
    let events = intake.store().read_stream(&stream, StreamVersion(1), 10).await.expect("read");
    events.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_paid_order_is_shipped_once_by_either_instance() {
    let schema = TestSchema::new().await;
    let stream = unique_name("PIPELINE");
    let settings = Settings::from_env().database_url(schema.url()).nats_url(&nats_url().await).names(
        schema.name(),
        &stream,
        &format!("t.{}", stream.to_lowercase()),
    );

    let intake = Intake::connect(&settings).await.expect("intake");
    intake.migrate(&settings).await.expect("migrate the store, create the stream");
    let stop_intake = CancellationToken::new();
    let relaying = tokio::spawn({
        let (intake, stop) = (intake.clone(), stop_intake.clone());
        async move { intake.run(stop).await }
    });
    let first = Shipping::connect(&settings).await.expect("shipping");
    first.migrate().await.expect("migrate the projection runtime");
    let second = Shipping::connect(&settings).await.expect("second shipping");
    let (stop_first, first_task) = spawn_shipping(&first);
    let (stop_second, second_task) = spawn_shipping(&second);

    let mut orders = Vec::new();
    for n in 0..10 {
        orders.push(intake.place(100 * (n + 1)).await.expect("place"));
    }
    for order in &orders[..6] {
        let paid = intake.pay(order).await.expect("pay");
        first.wait_for(&paid, DEADLINE).await.expect("shipped");
    }
    // The first instance stops; the second takes its partitions over.
    stop_first.cancel();
    first_task.await.expect("join").expect("first instance");
    for order in &orders[6..8] {
        let paid = intake.pay(order).await.expect("pay");
        second.wait_for(&paid, DEADLINE).await.expect("shipped by the survivor");
    }

    for order in &orders[..8] {
        assert_eq!(shipments(&intake, order).await, ["ShipmentRequested"], "{order}");
    }
    for order in &orders[8..] {
        assert!(shipments(&intake, order).await.is_empty(), "{order} was not paid");
    }

    stop_second.cancel();
    second_task.await.expect("join").expect("second instance");
    stop_intake.cancel();
    relaying.await.expect("join").expect("relay");
    async_nats::jetstream::new(async_nats::connect(nats_url().await).await.expect("nats"))
        .delete_stream(&stream)
        .await
        .expect("delete the stream");
}

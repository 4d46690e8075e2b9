//! The first release's orders: parsed, imported into a store, loaded and continued.

use std::sync::Arc;

use example_orders::domain::{
    codec, fixture_events, import_fixture, order_id_of, parse_fixture, Currency, FixtureError, Order, OrderCommand,
    OrderStatus, RECORDED_AT_HEADER,
};
use tidemark::{CommandHandler, CommandOptions, EventStore, InMemoryEventStore, LogPosition, StreamId, StreamVersion};

const A: &str = "order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a01";
const B: &str = "order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a02";

fn handler(store: &InMemoryEventStore) -> CommandHandler<Order, InMemoryEventStore> {
    CommandHandler::new(store.clone(), Arc::new(codec().expect("the upcasters are consistent")))
}

fn stream(id: &str) -> StreamId {
    StreamId::new(id).expect("a valid stream id")
}

#[test]
fn the_fixture_keeps_its_recorded_times_in_metadata() {
    let events = fixture_events().expect("the committed fixture parses");
    let first = &events[0];
    assert_eq!(first.stream_id.as_str(), A);
    assert_eq!(first.stream_version, StreamVersion(1));
    assert_eq!(first.event.metadata.headers.get(RECORDED_AT_HEADER).map(String::as_str), Some("2024-03-04T09:12:05Z"));
    assert!(events.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert!(events.iter().all(|e| order_id_of(&e.stream_id).is_some()));
}

#[test]
fn malformed_fixtures_are_typed_errors() {
    let row = |stream: &str, version: u64| {
        format!(
            r#"{{"stream_id":"{stream}","stream_version":{version},"event_type":"OrderConfirmed","schema_version":1,"payload":{{}},"recorded_at":"2024-03-04T09:12:05Z"}}"#
        )
    };
    assert_eq!(
        parse_fixture(&format!("{}\n\n{}\n", row("order-1", 1), row("order-1", 2))).map(|e| e.len()).ok(),
        Some(2)
    );
    let not_json = parse_fixture(&format!("{}\n{{oops", row("order-1", 1)));
    assert!(matches!(not_json, Err(FixtureError::Json { line: 2, .. })), "{not_json:?}");
    let bad_stream = parse_fixture(&row("order.1", 1));
    assert!(matches!(bad_stream, Err(FixtureError::StreamId { line: 1, .. })), "{bad_stream:?}");
    let gap = parse_fixture(&format!("{}\n{}", row("order-1", 1), row("order-1", 3)));
    assert!(
        matches!(
            gap,
            Err(FixtureError::OutOfOrder { line: 2, expected: StreamVersion(2), found: StreamVersion(3), .. })
        ),
        "{gap:?}"
    );
    let missing_first = parse_fixture(&row("order-1", 2));
    assert!(matches!(missing_first, Err(FixtureError::OutOfOrder { line: 1, .. })), "{missing_first:?}");
}

#[tokio::test]
async fn the_fixture_imports_once_and_every_order_loads() {
    let store = InMemoryEventStore::new();
    assert_eq!(import_fixture(&store).await.ok(), Some(20));
    assert_eq!(import_fixture(&store).await.ok(), Some(0), "a second import appends nothing");
    let log = store.read_log(LogPosition::START, 100).await.expect("the log reads");
    assert_eq!(log.len(), 20);

    let expected = [
        (A, OrderStatus::Shipped, 2100),
        (B, OrderStatus::Paid, 2390),
        ("order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a03", OrderStatus::Shipped, 5525),
        ("order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a04", OrderStatus::Cancelled, 4796),
        ("order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a05", OrderStatus::Cancelled, 1020),
        ("order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a06", OrderStatus::Placed, 99),
        ("order-018e0f6a-2c41-7b10-8a3e-1f2d3c4b5a07", OrderStatus::Confirmed, 5350),
    ];
    let orders = handler(&store);
    for (id, status, total) in expected {
        let loaded = orders.load(&stream(id)).await.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!((loaded.state.status(), loaded.state.total_minor()), (status, total), "{id}");
        assert_eq!(loaded.state.currency(), Some(Currency::EUR), "{id}");
    }
}

#[tokio::test]
async fn an_interrupted_import_resumes() {
    let store = InMemoryEventStore::new();
    let events = fixture_events().expect("the committed fixture parses");
    let first_three = events.into_iter().take(3).collect();
    assert_eq!(example_orders::domain::import_events(&store, first_three).await.ok(), Some(3));
    assert_eq!(import_fixture(&store).await.ok(), Some(17));
    assert_eq!(store.read_log(LogPosition::START, 100).await.map(|l| l.len()).ok(), Some(20));
}

#[tokio::test]
async fn imported_orders_take_new_commands() {
    let store = InMemoryEventStore::new();
    import_fixture(&store).await.expect("the fixture imports");
    let orders = handler(&store);

    let ship = OrderCommand::Ship { tracking: "GLS-77".into() };
    let outcome = orders.handle(&stream(B), &ship, &CommandOptions::new()).await.expect("a paid order ships");
    assert_eq!(outcome.version, StreamVersion(4));
    // The order was paid under the first release: the same payment is still recognised.
    let again = OrderCommand::Pay { payment_id: "pay_Q3sd81Vn".into(), amount_minor: 2390 };
    let outcome =
        orders.handle(&stream(B), &again, &CommandOptions::new()).await.expect("a repeated payment is a no-op");
    assert_eq!(outcome.appended(), 0);
    let loaded = orders.load(&stream(B)).await.expect("the order loads");
    assert_eq!((loaded.state.status(), loaded.state.tracking()), (OrderStatus::Shipped, Some("GLS-77")));
}

//! Every rule of the `Order` aggregate, through the given/when/then harness.

use example_orders::domain::{
    Currency, Line, LineAdded, LineRemoved, Order, OrderCancelled, OrderCommand, OrderConfirmed, OrderError,
    OrderEvent, OrderPaid, OrderPlaced, OrderShipped, OrderStatus, MAX_CUSTOMER_CHARS, MAX_LINES, MAX_PRODUCT_CHARS,
};
use tidemark::{Aggregate, AggregateTest};

fn tea() -> Line {
    Line::new("tea", 2, 450)
}

fn mug() -> Line {
    Line::new("mug", 1, 1200)
}

fn placed() -> OrderEvent {
    OrderPlaced { customer: "ada".into(), lines: vec![tea(), mug()], currency: Currency::EUR, delivery: None }.into()
}

fn confirmed() -> OrderEvent {
    OrderConfirmed {}.into()
}

fn paid() -> OrderEvent {
    OrderPaid { payment_id: "pay-1".into(), amount_minor: 2100 }.into()
}

fn shipped() -> OrderEvent {
    OrderShipped { tracking: "DHL-1".into() }.into()
}

fn cancelled() -> OrderEvent {
    OrderCancelled { reason: "changed mind".into() }.into()
}

/// The events leading to each status, for the status-based rules.
fn history(status: OrderStatus) -> Vec<OrderEvent> {
    match status {
        OrderStatus::Unplaced => vec![],
        OrderStatus::Placed => vec![placed()],
        OrderStatus::Confirmed => vec![placed(), confirmed()],
        OrderStatus::Paid => vec![placed(), confirmed(), paid()],
        OrderStatus::Shipped => vec![placed(), confirmed(), paid(), shipped()],
        OrderStatus::Cancelled => vec![placed(), cancelled()],
    }
}

fn place(lines: Vec<Line>) -> OrderCommand {
    OrderCommand::Place { customer: "ada".into(), lines, currency: Currency::EUR, delivery: None }
}

fn pay(payment_id: &str, amount_minor: i64) -> OrderCommand {
    OrderCommand::Pay { payment_id: payment_id.into(), amount_minor }
}

#[test]
fn the_happy_path_from_place_to_ship() {
    let order = AggregateTest::<Order>::given_no_events().when(place(vec![tea(), mug()])).then([placed()]);
    assert_eq!((order.status(), order.customer(), order.currency()), (OrderStatus::Placed, "ada", Some(Currency::EUR)));
    assert_eq!((order.lines(), order.total_minor()), (&[tea(), mug()][..], 2100));

    let order =
        AggregateTest::<Order>::given(history(OrderStatus::Placed)).when(OrderCommand::Confirm).then([confirmed()]);
    assert_eq!(order.status(), OrderStatus::Confirmed);

    let order = AggregateTest::<Order>::given(history(OrderStatus::Confirmed)).when(pay("pay-1", 2100)).then([paid()]);
    assert_eq!((order.status(), order.payment_id()), (OrderStatus::Paid, Some("pay-1")));

    let ship = OrderCommand::Ship { tracking: "DHL-1".into() };
    let order = AggregateTest::<Order>::given(history(OrderStatus::Paid)).when(ship).then([shipped()]);
    assert_eq!((order.status(), order.tracking()), (OrderStatus::Shipped, Some("DHL-1")));
    assert!(order.status().is_final());
}

#[test]
fn an_order_is_placed_once() {
    for status in OrderStatus::ALL.into_iter().filter(|s| *s != OrderStatus::Unplaced) {
        AggregateTest::<Order>::given(history(status)).when(place(vec![tea()])).then_error(OrderError::AlreadyPlaced);
    }
}

#[test]
fn placing_validates_customer_lines_and_total() {
    let given = AggregateTest::<Order>::given_no_events;
    given().when(place(vec![])).then_error(OrderError::NoLines);
    let blank =
        OrderCommand::Place { customer: "  ".into(), lines: vec![tea()], currency: Currency::EUR, delivery: None };
    given().when(blank).then_error(OrderError::Required { field: "customer" });
    let long =
        OrderCommand::Place { customer: "c".repeat(129), lines: vec![tea()], currency: Currency::EUR, delivery: None };
    given().when(long).then_error(OrderError::TooLong { field: "customer", max: MAX_CUSTOMER_CHARS });
    given().when(place(vec![tea(), Line::new("", 1, 1)])).then_error(OrderError::Required { field: "product" });
    let long_product = Line::new("p".repeat(MAX_PRODUCT_CHARS + 1), 1, 1);
    given().when(place(vec![long_product])).then_error(OrderError::TooLong { field: "product", max: 64 });
    given().when(place(vec![Line::new("tea", 0, 1)])).then_error(OrderError::ZeroQuantity { product: "tea".into() });
    given().when(place(vec![Line::new("tea", 1, -1)])).then_error(OrderError::NegativePrice { product: "tea".into() });
    let twice = vec![tea(), mug(), Line::new("tea", 1, 1)];
    given().when(place(twice)).then_error(OrderError::DuplicateProduct { product: "tea".into() });
    let huge = vec![Line::new("a", 2, i64::MAX / 2 + 1)];
    given().when(place(huge)).then_error(OrderError::TotalOverflow);
    let many = (0..=MAX_LINES).map(|i| Line::new(format!("p{i}"), 1, 1)).collect();
    given().when(place(many)).then_error(OrderError::TooManyLines { max: MAX_LINES });
}

#[test]
fn a_free_line_is_allowed() {
    let free = Line::new("sticker", 1, 0);
    let event =
        OrderPlaced { customer: "ada".into(), lines: vec![free.clone()], currency: Currency::EUR, delivery: None };
    let order = AggregateTest::<Order>::given_no_events().when(place(vec![free])).then([event.into()]);
    assert_eq!(order.total_minor(), 0);
}

#[test]
fn lines_are_added_and_removed_while_placed() {
    let pot = Line::new("pot", 1, 3500);
    let add = OrderCommand::AddLine { line: pot.clone() };
    let order =
        AggregateTest::<Order>::given(history(OrderStatus::Placed)).when(add).then([LineAdded { line: pot }.into()]);
    assert_eq!(order.total_minor(), 5600);

    let remove = OrderCommand::RemoveLine { product: "mug".into() };
    let order = AggregateTest::<Order>::given(history(OrderStatus::Placed))
        .when(remove)
        .then([LineRemoved { product: "mug".into() }.into()]);
    assert_eq!((order.lines(), order.total_minor()), (&[tea()][..], 900));
}

#[test]
fn adding_a_line_is_checked_like_placing() {
    let given = || AggregateTest::<Order>::given(history(OrderStatus::Placed));
    given()
        .when(OrderCommand::AddLine { line: tea() })
        .then_error(OrderError::DuplicateProduct { product: "tea".into() });
    let zero = OrderCommand::AddLine { line: Line::new("pot", 0, 1) };
    given().when(zero).then_error(OrderError::ZeroQuantity { product: "pot".into() });
    let huge = OrderCommand::AddLine { line: Line::new("gold", 1, i64::MAX) };
    given().when(huge).then_error(OrderError::TotalOverflow);

    let mut full = vec![placed()];
    full.extend((2..MAX_LINES).map(|i| LineAdded { line: Line::new(format!("p{i}"), 1, 1) }.into()));
    let one_more = OrderCommand::AddLine { line: Line::new("one-more", 1, 1) };
    AggregateTest::<Order>::given(full).when(one_more).then_error(OrderError::TooManyLines { max: MAX_LINES });
}

#[test]
fn removing_needs_a_known_product_and_never_empties_the_order() {
    let given = || AggregateTest::<Order>::given(history(OrderStatus::Placed));
    let unknown = OrderCommand::RemoveLine { product: "pot".into() };
    given().when(unknown).then_error(OrderError::UnknownProduct { product: "pot".into() });

    let mut one_line = history(OrderStatus::Placed);
    one_line.push(LineRemoved { product: "mug".into() }.into());
    let last = OrderCommand::RemoveLine { product: "tea".into() };
    AggregateTest::<Order>::given(one_line).when(last).then_error(OrderError::LastLine);
}

#[test]
fn lines_are_frozen_outside_placed() {
    let add = || OrderCommand::AddLine { line: Line::new("pot", 1, 1) };
    let remove = || OrderCommand::RemoveLine { product: "mug".into() };
    AggregateTest::<Order>::given_no_events().when(add()).then_error(OrderError::NotPlaced);
    AggregateTest::<Order>::given_no_events().when(remove()).then_error(OrderError::NotPlaced);
    for status in [OrderStatus::Confirmed, OrderStatus::Paid, OrderStatus::Shipped, OrderStatus::Cancelled] {
        AggregateTest::<Order>::given(history(status)).when(add()).then_error(OrderError::NotModifiable { status });
        AggregateTest::<Order>::given(history(status)).when(remove()).then_error(OrderError::NotModifiable { status });
    }
}

#[test]
fn only_a_placed_order_is_confirmed() {
    AggregateTest::<Order>::given_no_events().when(OrderCommand::Confirm).then_error(OrderError::NotPlaced);
    for status in [OrderStatus::Confirmed, OrderStatus::Paid, OrderStatus::Shipped, OrderStatus::Cancelled] {
        AggregateTest::<Order>::given(history(status))
            .when(OrderCommand::Confirm)
            .then_error(OrderError::NotConfirmable { status });
    }
}

#[test]
fn only_a_confirmed_order_is_paid() {
    AggregateTest::<Order>::given_no_events().when(pay("pay-1", 2100)).then_error(OrderError::NotPlaced);
    for status in [OrderStatus::Placed, OrderStatus::Cancelled] {
        AggregateTest::<Order>::given(history(status))
            .when(pay("pay-1", 2100))
            .then_error(OrderError::NotPayable { status });
    }
}

#[test]
fn the_amount_paid_is_the_total() {
    for offered_minor in [0, 2099, 2101, -2100] {
        AggregateTest::<Order>::given(history(OrderStatus::Confirmed))
            .when(pay("pay-1", offered_minor))
            .then_error(OrderError::AmountMismatch { expected_minor: 2100, offered_minor });
    }
    let blank = pay(" ", 2100);
    AggregateTest::<Order>::given(history(OrderStatus::Confirmed))
        .when(blank)
        .then_error(OrderError::Required { field: "payment_id" });
}

#[test]
fn paying_again_with_the_same_payment_id_records_nothing() {
    for status in [OrderStatus::Paid, OrderStatus::Shipped] {
        let order = AggregateTest::<Order>::given(history(status)).when(pay("pay-1", 2100)).then([]);
        assert_eq!(order.status(), status);
    }
    // Even after a cancellation, the same payment is not a new one.
    let mut paid_then_cancelled = history(OrderStatus::Paid);
    paid_then_cancelled.push(cancelled());
    AggregateTest::<Order>::given(paid_then_cancelled).when(pay("pay-1", 2100)).then([]);
}

#[test]
fn paying_again_with_another_payment_id_is_refused() {
    for status in [OrderStatus::Paid, OrderStatus::Shipped] {
        AggregateTest::<Order>::given(history(status)).when(pay("pay-2", 2100)).then_error(OrderError::AlreadyPaid);
    }
}

#[test]
fn only_a_paid_order_is_shipped() {
    let ship = || OrderCommand::Ship { tracking: "DHL-2".into() };
    AggregateTest::<Order>::given_no_events().when(ship()).then_error(OrderError::NotPlaced);
    for status in [OrderStatus::Placed, OrderStatus::Confirmed, OrderStatus::Shipped, OrderStatus::Cancelled] {
        AggregateTest::<Order>::given(history(status)).when(ship()).then_error(OrderError::NotShippable { status });
    }
    let blank = OrderCommand::Ship { tracking: String::new() };
    AggregateTest::<Order>::given(history(OrderStatus::Paid))
        .when(blank)
        .then_error(OrderError::Required { field: "tracking" });
}

#[test]
fn an_unshipped_order_is_cancelled_once() {
    let cancel = || OrderCommand::Cancel { reason: "changed mind".into() };
    for status in [OrderStatus::Placed, OrderStatus::Confirmed, OrderStatus::Paid] {
        let order = AggregateTest::<Order>::given(history(status)).when(cancel()).then([cancelled()]);
        assert_eq!((order.status(), order.cancel_reason()), (OrderStatus::Cancelled, Some("changed mind")));
    }
    AggregateTest::<Order>::given_no_events().when(cancel()).then_error(OrderError::NotPlaced);
    AggregateTest::<Order>::given(history(OrderStatus::Shipped)).when(cancel()).then_error(OrderError::AlreadyShipped);
    AggregateTest::<Order>::given(history(OrderStatus::Cancelled))
        .when(cancel())
        .then_error(OrderError::AlreadyCancelled);
    let blank = OrderCommand::Cancel { reason: "\t".into() };
    AggregateTest::<Order>::given(history(OrderStatus::Placed))
        .when(blank)
        .then_error(OrderError::Required { field: "reason" });
}

#[test]
fn only_placing_creates_a_stream() {
    assert!(Order::creates_stream(&place(vec![tea()])));
    assert!(!Order::creates_stream(&OrderCommand::Confirm));
}

#[test]
fn the_state_survives_a_snapshot() {
    let order = Order::replay(&history(OrderStatus::Shipped));
    let json = serde_json::to_value(&order).expect("an order serialises");
    assert_eq!(serde_json::from_value::<Order>(json).ok(), Some(order));
}

//! The fulfilment aggregate and the process manager linking it to orders.

use std::sync::Arc;

use example_orders::domain::{
    after_dispatched, after_paid, codec, fulfilment_codec, fulfilment_order_id, order_stream, Currency, Fulfilment,
    FulfilmentCommand, FulfilmentDispatched, FulfilmentError, FulfilmentLine, FulfilmentRequested, Line, Order,
    OrderCancelled, OrderCommand, OrderConfirmed, OrderEvent, OrderPaid, OrderPlaced, OrderStatus,
};
use tidemark::{Aggregate, AggregateTest, CommandHandler, CommandOptions, InMemoryEventStore};
use uuid::Uuid;

const ORDER: Uuid = Uuid::from_u128(0x018e_0f6a_2c41_7b10_8a3e_1f2d_3c4b_5a01);

fn paid_order() -> (Order, OrderPaid) {
    let paid = OrderPaid { payment_id: "pay-1".into(), amount_minor: 1450 };
    let events: [OrderEvent; 3] = [
        OrderPlaced {
            customer: "ada".into(),
            lines: vec![Line::new("tea", 1, 250), Line::new("mug", 1, 1200)],
            currency: Currency::EUR,
            delivery: None,
        }
        .into(),
        OrderConfirmed {}.into(),
        paid.clone().into(),
    ];
    (Order::replay(&events), paid)
}

fn lines() -> Vec<FulfilmentLine> {
    vec![FulfilmentLine { product: "tea".into(), quantity: 1 }, FulfilmentLine { product: "mug".into(), quantity: 1 }]
}

fn requested() -> FulfilmentRequested {
    FulfilmentRequested { order_id: ORDER, lines: lines() }
}

#[test]
fn a_paid_order_requests_its_fulfilment_with_a_stable_command_id() {
    let (order, paid) = paid_order();
    let first = after_paid(ORDER, &order, &paid).expect("a paid order is fulfilled");
    assert_eq!(first.stream.as_str(), format!("fulfilment-{ORDER}"));
    assert_eq!(first.command, FulfilmentCommand::Request { order_id: ORDER, lines: lines() });
    assert_eq!(after_paid(ORDER, &order, &paid), Some(first.clone()), "reprocessing gives the same command");

    let other_order = after_paid(Uuid::from_u128(7), &order, &paid).expect("a paid order is fulfilled");
    assert_ne!(other_order.command_id, first.command_id);
    let other_payment = OrderPaid { payment_id: "pay-2".into(), ..paid };
    assert_ne!(after_paid(ORDER, &order, &other_payment).map(|f| f.command_id), Some(first.command_id));
}

#[test]
fn a_cancelled_or_empty_order_is_not_fulfilled() {
    let (mut order, paid) = paid_order();
    assert_eq!(after_paid(ORDER, &Order::default(), &paid), None);
    order.evolve(&OrderCancelled { reason: "fraud".into() }.into());
    assert_eq!(after_paid(ORDER, &order, &paid), None);
}

#[test]
fn a_dispatch_ships_the_order_with_a_stable_command_id() {
    let dispatched = FulfilmentDispatched { tracking: "DHL-9".into() };
    let follow_up = after_dispatched(ORDER, &dispatched);
    assert_eq!(follow_up.stream, order_stream(ORDER));
    assert_eq!(follow_up.command, OrderCommand::Ship { tracking: "DHL-9".into() });
    assert_eq!(after_dispatched(ORDER, &dispatched), follow_up);
    let other = FulfilmentDispatched { tracking: "DHL-10".into() };
    assert_ne!(after_dispatched(ORDER, &other).command_id, follow_up.command_id);
}

#[test]
fn fulfilment_rules() {
    let request = |order_id, lines| FulfilmentCommand::Request { order_id, lines };
    let dispatch = |tracking: &str| FulfilmentCommand::Dispatch { tracking: tracking.into() };
    let state = AggregateTest::<Fulfilment>::given_no_events().when(request(ORDER, lines())).then([requested().into()]);
    assert_eq!((state.order_id(), state.lines()), (Some(ORDER), &lines()[..]));
    AggregateTest::<Fulfilment>::given_no_events().when(request(ORDER, vec![])).then_error(FulfilmentError::NoLines);
    AggregateTest::<Fulfilment>::given([requested().into()]).when(request(ORDER, lines())).then([]);
    AggregateTest::<Fulfilment>::given([requested().into()])
        .when(request(Uuid::nil(), lines()))
        .then_error(FulfilmentError::OtherOrder { order_id: ORDER });

    let dispatched = FulfilmentDispatched { tracking: "DHL-9".into() };
    let state = AggregateTest::<Fulfilment>::given([requested().into()])
        .when(dispatch("DHL-9"))
        .then([dispatched.clone().into()]);
    assert_eq!(state.tracking(), Some("DHL-9"));
    AggregateTest::<Fulfilment>::given_no_events().when(dispatch("DHL-9")).then_error(FulfilmentError::NotRequested);
    AggregateTest::<Fulfilment>::given([requested().into(), dispatched.into()])
        .when(dispatch("DHL-10"))
        .then_error(FulfilmentError::AlreadyDispatched);
    AggregateTest::<Fulfilment>::given([requested().into()])
        .when(dispatch(" "))
        .then_error(FulfilmentError::TrackingRequired);
}

/// The whole flow on a store, with the event redelivered to the process manager.
#[tokio::test]
async fn paid_to_shipped_through_the_process_manager() {
    let store = InMemoryEventStore::new();
    let orders = CommandHandler::<Order, _>::new(store.clone(), Arc::new(codec().expect("consistent upcasters")));
    let fulfilments =
        CommandHandler::<Fulfilment, _>::new(store.clone(), Arc::new(fulfilment_codec().expect("no upcasters")));
    let stream = order_stream(ORDER);
    let place = OrderCommand::Place {
        customer: "ada".into(),
        lines: vec![Line::new("tea", 3, 450)],
        currency: Currency::EUR,
        delivery: None,
    };
    let pay = OrderCommand::Pay { payment_id: "pay-1".into(), amount_minor: 1350 };
    for command in [place, OrderCommand::Confirm, pay] {
        orders.handle(&stream, &command, &CommandOptions::new()).await.expect("the order accepts the command");
    }

    let order = orders.load(&stream).await.expect("the order loads").state;
    let paid = OrderPaid { payment_id: "pay-1".into(), amount_minor: 1350 };
    for delivery in 1..=2 {
        let follow_up = after_paid(ORDER, &order, &paid).expect("a paid order is fulfilled");
        let options = CommandOptions::new().id(follow_up.command_id);
        let outcome = fulfilments.handle(&follow_up.stream, &follow_up.command, &options).await.expect("requested");
        assert_eq!((outcome.duplicate, outcome.appended()), (delivery == 2, 1), "delivery {delivery}");
    }

    let fulfilment_stream = example_orders::domain::fulfilment_stream(ORDER);
    let dispatch = FulfilmentCommand::Dispatch { tracking: "DHL-9".into() };
    fulfilments.handle(&fulfilment_stream, &dispatch, &CommandOptions::new()).await.expect("dispatched");
    let order_id = fulfilment_order_id(&fulfilment_stream).expect("a fulfilment stream names its order");
    let follow_up = after_dispatched(order_id, &FulfilmentDispatched { tracking: "DHL-9".into() });
    let options = CommandOptions::new().id(follow_up.command_id);
    orders.handle(&follow_up.stream, &follow_up.command, &options).await.expect("the order ships");
    let again =
        orders.handle(&follow_up.stream, &follow_up.command, &options).await.expect("a redelivery is a duplicate");
    assert!(again.duplicate);
    let order = orders.load(&stream).await.expect("the order loads").state;
    assert_eq!((order.status(), order.tracking()), (OrderStatus::Shipped, Some("DHL-9")));
}

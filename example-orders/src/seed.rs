//! `orders seed`: realistic traffic, appended through the same command handlers as the
//! HTTP layer uses. Several customers order one to three products of a small catalogue;
//! each order then goes on a journey: stays placed, is confirmed, paid, shipped, or
//! cancelled before or after payment; some get a line added before confirming.
//!
//! Shipping goes the way the process manager goes: the fulfilment is requested with the
//! command id the process manager derives from the payment, the warehouse dispatches it,
//! and the order is shipped with the id derived from the dispatch. Whichever of this and
//! the process manager comes first records the command; the other records nothing.

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tidemark::{CommandError, CommandOptions, EventStore, Metadata};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::domain::{
    after_dispatched, after_paid, fulfilment_stream, order_stream, Currency, FollowUp, FulfilmentCommand,
    FulfilmentDispatched, FulfilmentError, Line, OrderCommand, OrderError, OrderPaid,
};
use crate::runtime::Handlers;

/// Products and their unit prices in euro cents.
const CATALOGUE: [(&str, i64); 8] = [
    ("tea-earl-grey", 450),
    ("tea-sencha", 620),
    ("mug-blue", 1200),
    ("coffee-beans-1kg", 2390),
    ("teapot-cast-iron", 4590),
    ("filter-papers", 290),
    ("kettle-gooseneck", 6900),
    ("cocoa-500g", 850),
];

/// Customers (log in as one of them with `orders token ada@example.com`).
const CUSTOMERS: [&str; 6] = [
    "ada@example.com",
    "grace@example.com",
    "linus@example.com",
    "barbara@example.com",
    "ken@example.com",
    "margaret@example.com",
];

/// Where an order's life stops, with how often (out of 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Journey {
    /// Placed, nothing more (10).
    Placed,
    /// Confirmed, not paid (10).
    Confirmed,
    /// Paid; its fulfilment waits for the warehouse (15).
    Paid,
    /// Dispatched by the warehouse and shipped (45).
    Shipped,
    /// Cancelled before confirming (12).
    CancelledEarly,
    /// Paid, then cancelled (8).
    CancelledAfterPayment,
}

const JOURNEYS: [(Journey, u32); 6] = [
    (Journey::Placed, 10),
    (Journey::Confirmed, 10),
    (Journey::Paid, 15),
    (Journey::Shipped, 45),
    (Journey::CancelledEarly, 12),
    (Journey::CancelledAfterPayment, 8),
];

/// How much to seed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeedOptions {
    /// Orders to place.
    pub orders: usize,
    /// Orders on their way at once (default 8).
    pub concurrency: usize,
    /// The random generator's seed (default: random); the same seed gives the same mix.
    pub rng_seed: u64,
}

impl SeedOptions {
    /// `orders` orders, 8 at a time, a random mix.
    pub fn new(orders: usize) -> Self {
        Self { orders, concurrency: 8, rng_seed: rand::random() }
    }
}

/// How many orders ended each journey.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Orders per journey.
    pub journeys: BTreeMap<Journey, usize>,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: usize = self.journeys.values().sum();
        write!(f, "{total} orders:")?;
        for (journey, count) in &self.journeys {
            write!(f, " {journey:?} {count}")?;
        }
        Ok(())
    }
}

/// Why seeding stopped. Orders seeded before the failure stay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// An order command failed.
    #[error("an order command failed: {0}")]
    Order(#[from] CommandError<OrderError>),
    /// A fulfilment command failed.
    #[error("a fulfilment command failed: {0}")]
    Fulfilment(#[from] CommandError<FulfilmentError>),
    /// Loading an order failed.
    #[error("loading an order: {0}")]
    Store(#[from] tidemark::Error),
    /// A seeding task panicked.
    #[error("a seeding task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One order's plan, drawn up front so that a seed gives the same mix.
#[derive(Debug)]
struct Plan {
    order_id: Uuid,
    customer: &'static str,
    lines: Vec<Line>,
    added: Option<Line>,
    journey: Journey,
    tracking: String,
}

fn plan(rng: &mut StdRng) -> Plan {
    let customer = CUSTOMERS[rng.gen_range(0..CUSTOMERS.len())];
    let count = rng.gen_range(1..=3);
    let mut lines: Vec<Line> = CATALOGUE
        .choose_multiple(rng, count + 1)
        .map(|(product, price)| Line::new(*product, rng.gen_range(1..=4), *price))
        .collect();
    let added = lines.pop().filter(|_| rng.gen_bool(0.2));
    let journey = journey(rng);
    let tracking = format!("TRK{:010}", rng.gen_range(0..10_000_000_000u64));
    Plan { order_id: Uuid::now_v7(), customer, lines, added, journey, tracking }
}

fn journey(rng: &mut StdRng) -> Journey {
    let mut roll = rng.gen_range(0..JOURNEYS.iter().map(|(_, weight)| weight).sum::<u32>());
    for (journey, weight) in JOURNEYS {
        if roll < weight {
            return journey;
        }
        roll -= weight;
    }
    Journey::Placed
}

/// Appends `options.orders` orders through `handlers`.
pub async fn seed<S: EventStore + Clone + 'static>(
    handlers: &Handlers<S>,
    options: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    let mut rng = StdRng::seed_from_u64(options.rng_seed);
    let mut report = SeedReport::default();
    let mut running = JoinSet::new();
    for _ in 0..options.orders {
        if running.len() >= options.concurrency.max(1) {
            finished(&mut running, &mut report).await?;
        }
        let (handlers, plan) = (handlers.clone(), plan(&mut rng));
        running.spawn(async move { walk(&handlers, plan).await });
    }
    while !running.is_empty() {
        finished(&mut running, &mut report).await?;
    }
    Ok(report)
}

async fn finished(running: &mut JoinSet<Result<Journey, SeedError>>, report: &mut SeedReport) -> Result<(), SeedError> {
    if let Some(joined) = running.join_next().await {
        *report.journeys.entry(joined??).or_default() += 1;
    }
    Ok(())
}

fn acting_as(user: &str) -> CommandOptions {
    CommandOptions::new().metadata(Metadata::new().with_user(user))
}

fn following<C>(follow: &FollowUp<C>) -> CommandOptions {
    acting_as("orders-seed").id(follow.command_id)
}

/// Takes one order along its journey.
async fn walk<S: EventStore + Clone + 'static>(handlers: &Handlers<S>, plan: Plan) -> Result<Journey, SeedError> {
    let (id, journey) = (plan.order_id, plan.journey);
    let (stream, customer) = (order_stream(id), acting_as(plan.customer));
    let order = |command: OrderCommand| {
        let (stream, options) = (&stream, &customer);
        async move { handlers.orders.handle(stream, &command, options).await }
    };
    order(OrderCommand::Place {
        customer: plan.customer.to_owned(),
        lines: plan.lines,
        currency: Currency::EUR,
        delivery: None,
    })
    .await?;
    if let Some(line) = plan.added {
        order(OrderCommand::AddLine { line }).await?;
    }
    match journey {
        Journey::Placed => return Ok(journey),
        Journey::CancelledEarly => {
            order(OrderCommand::Cancel { reason: "changed my mind".to_owned() }).await?;
            return Ok(journey);
        }
        _ => {}
    }
    order(OrderCommand::Confirm).await?;
    if journey == Journey::Confirmed {
        return Ok(journey);
    }
    let payment_id = format!("pay_{}", Uuid::new_v4().simple());
    let amount_minor = handlers.orders.load(&stream).await?.state.total_minor();
    order(OrderCommand::Pay { payment_id: payment_id.clone(), amount_minor }).await?;
    if journey == Journey::CancelledAfterPayment {
        order(OrderCommand::Cancel { reason: "found it cheaper elsewhere".to_owned() }).await?;
        return Ok(journey);
    }
    let paid = handlers.orders.load(&stream).await?.state;
    if let Some(follow) = after_paid(id, &paid, &OrderPaid { payment_id, amount_minor }) {
        handlers.fulfilments.handle(&follow.stream, &follow.command, &following(&follow)).await?;
    }
    if journey == Journey::Paid {
        return Ok(journey);
    }
    let dispatch = FulfilmentCommand::Dispatch { tracking: plan.tracking.clone() };
    handlers.fulfilments.handle(&fulfilment_stream(id), &dispatch, &acting_as("warehouse")).await?;
    let follow = after_dispatched(id, &FulfilmentDispatched { tracking: plan.tracking });
    handlers.orders.handle(&follow.stream, &follow.command, &following(&follow)).await?;
    Ok(journey)
}

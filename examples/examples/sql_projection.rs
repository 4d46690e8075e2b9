//! Step 3: a projection into a SQL table of its own (`Balances`, in src/balances.rs), kept
//! up to date from the PostgreSQL store and queried back. The events reach it through the
//! in-process bus: one process, no NATS (step 5 puts JetStream in between).
//!
//! `cargo run -p tidemark-examples --example sql_projection`

use std::sync::Arc;
use std::time::Duration;

use tidemark::{Aggregate, CommandHandler, CommandOptions, EventCodec, LogPosition, StreamId};
use tidemark_examples::account::{Account, AccountCommand};
use tidemark_examples::balances::{balance, Balances};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{InProcessBus, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tokio_util::sync::CancellationToken;

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_projection");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = project(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn project(store: &PgEventStore) -> Result<(), BoxError> {
    // ANCHOR: wire
    store.migrate().await?;
    let read_models = PgReadModels::new(store); // in the store's database and schema
    read_models.migrate().await?; // the projection runtime's own tables

    let bus = InProcessBus::new(4)?; // 4 partitions, fed from the store's log
    let runner = ProjectionRunner::new(
        Balances::new()?,
        read_models.clone(),
        store.clone(),
        bus.clone(),
        RunnerConfig::default(),
    )?;

    let shutdown = CancellationToken::new();
    let pump = tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), shutdown.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });
    // ANCHOR_END: wire

    // ANCHOR: query
    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    let last = accounts.handle(&id, &AccountCommand::Deposit { cents: 2_500 }, &CommandOptions::new()).await?;

    // Read-your-writes: wait until the projection has taken that append in.
    runner.wait_for_append(&last, Duration::from_secs(10)).await?;
    let cents = balance(&read_models, &id).await?;
    println!("{id}: {cents:?} cents");
    assert_eq!(cents, Some(2_500));
    // ANCHOR_END: query

    shutdown.cancel();
    pump.await??;
    running.await??;
    Ok(())
}

tidemark_examples::example_main!(run);

//! Step 8: several processes without NATS. Each runner reads the store's log itself
//! through a `PgLogFeed`; instances of one projection share its partitions through
//! PostgreSQL advisory locks, as on JetStream. No relay, no broker.
//!
//! `cargo run -p tidemark-examples --example pg_feed` (PostgreSQL as in step 2; no NATS)

use std::sync::Arc;
use std::time::Duration;

use tidemark::{Aggregate, CommandHandler, CommandOptions, EventCodec, StreamId};
use tidemark_examples::account::{Account, AccountCommand};
use tidemark_examples::balances::{balance, Balances};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{Coordination, PgLogFeed, PgReadModels};
use tokio_util::sync::CancellationToken;

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_pgfeed");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = project(&store, &schema).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn project(store: &PgEventStore, schema: &str) -> Result<(), BoxError> {
    store.migrate().await?;
    let read_models = PgReadModels::new(store);
    read_models.migrate().await?;
    let shutdown = CancellationToken::new();

    // ANCHOR: runner
    // The feed reads the store's log (woken by LISTEN/NOTIFY, polling as a fallback) and
    // keeps each partition's events; choose the partitions once, as on JetStream.
    let feed = PgLogFeed::new(store.clone(), 4)?;
    let runner =
        ProjectionRunner::new(Balances::new()?, read_models.clone(), store.clone(), feed, RunnerConfig::default())?;
    // Every process running this shares the 4 partitions; a survivor takes a dead one's.
    let coordination = Coordination::postgres(store.pool().clone(), schema);
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run_shared(coordination, stop).await }
    });
    // ANCHOR_END: runner

    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "owner 1".to_owned() }, &CommandOptions::new()).await?;
    let outcome = accounts.handle(&id, &AccountCommand::Deposit { cents: 250 }, &CommandOptions::new()).await?;
    // Store → runner → table: nothing in between.
    runner.wait_for_append(&outcome, Duration::from_secs(30)).await?;
    println!("{id}: {:?} cents", balance(&read_models, &id).await?);
    assert_eq!(balance(&read_models, &id).await?, Some(250));

    shutdown.cancel();
    running.await??;
    Ok(())
}

tidemark_examples::example_main!(run);

//! Step 6: rebuilding a read model from the log. A rebuild reads the PostgreSQL log (not
//! JetStream) into a shadow schema while the live table keeps serving, then swaps it in
//! atomically. A projection whose version changed is rebuilt when its runner starts.
//!
//! `cargo run -p tidemark-examples --example rebuild`

use std::sync::Arc;

use tidemark::{Aggregate, CommandHandler, CommandOptions, EventCodec, StreamId};
use tidemark_examples::account::{Account, AccountCommand};
use tidemark_examples::balances::{balance, Balances};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{InProcessBus, ProjectionRunner, RebuildOptions, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_rebuild");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = rebuild(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn rebuild(store: &PgEventStore) -> Result<(), BoxError> {
    store.migrate().await?;
    let read_models = PgReadModels::new(store);
    read_models.migrate().await?;
    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    for _ in 0..10 {
        accounts.handle(&id, &AccountCommand::Deposit { cents: 100 }, &CommandOptions::new()).await?;
    }

    // ANCHOR: rebuild
    let bus = InProcessBus::new(4)?; // a rebuild reads the log; the feed only gives the partitions
    let runner = ProjectionRunner::new(
        Balances::new()?,
        read_models.clone(),
        store.clone(),
        bus.clone(),
        RunnerConfig::default(),
    )?;
    runner.prepare().await?; // a new read model: built from the log (`run` does this first)
    assert_eq!(balance(&read_models, &id).await?, Some(1_000));

    // Say a bug wrote wrong rows. A rebuild makes the table again from the events.
    let table = format!("\"{}\".balances", read_models.projection_schema("balances"));
    sqlx::query(&format!("UPDATE {table} SET cents = 0")).execute(read_models.pool()).await?;
    let options = RebuildOptions::default().batch_size(4);
    let outcome = runner.rebuild(options, &mut |p| println!("rebuilt {} events, at {}", p.events, p.position)).await?;
    println!("{outcome:?}");
    assert_eq!(balance(&read_models, &id).await?, Some(1_000));

    // A new version of the projection (new columns, a fixed `apply`) is rebuilt at start
    // (`VersionChange::Rebuild`, the default; `VersionChange::Refuse` waits for an operator).
    let changed = Balances::new()?.at_version(2);
    let runner = ProjectionRunner::new(changed, read_models.clone(), store.clone(), bus, RunnerConfig::default())?;
    runner.prepare().await?;
    assert_eq!(balance(&read_models, &id).await?, Some(1_000));
    // ANCHOR_END: rebuild
    Ok(())
}

tidemark_examples::example_main!(run);

//! Step 2: the same aggregate on the PostgreSQL store: migrations, commands, refusals,
//! conflicts and the global log.
//!
//! `cargo run -p tidemark-examples --example postgres_store` (PostgreSQL at `DATABASE_URL`,
//! or postgres://postgres@127.0.0.1:5432/test)

use std::sync::Arc;

use tidemark::{
    Aggregate, CommandError, CommandHandler, CommandOptions, Error, EventCodec, EventStore, ExpectedVersion,
    LogPosition, StreamId, StreamVersion,
};
use tidemark_examples::account::{Account, AccountCommand, AccountError};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_store");
    // ANCHOR: connect
    let config = PgStoreConfig::default().schema(&schema); // default schema: "tidemark"
    let store = PgEventStore::connect(&database_url(), config).await?;
    store.migrate().await?; // explicit: nothing runs DDL on an ordinary start
                            // ANCHOR_END: connect
    let outcome = use_the_store(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

// ANCHOR: use
async fn use_the_store(store: &PgEventStore) -> Result<(), BoxError> {
    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    accounts.handle(&id, &AccountCommand::Deposit { cents: 1_000 }, &CommandOptions::new()).await?;

    // A refused command writes nothing and comes back as the aggregate's own error.
    match accounts.handle(&id, &AccountCommand::Withdraw { cents: 5_000 }, &CommandOptions::new()).await {
        Err(CommandError::Rejected(AccountError::InsufficientFunds { balance, asked })) => {
            println!("refused: {asked} asked, {balance} held");
        }
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }

    // Expecting an exact version turns a change made meanwhile into a typed conflict.
    let stale = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(1)));
    match accounts.handle(&id, &AccountCommand::Deposit { cents: 1 }, &stale).await {
        Err(CommandError::Store(Error::Conflict { actual, .. })) => println!("conflict: the stream is at {actual}"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }

    // The global log: every stream's events in commit order, never skipping one.
    for event in store.read_log(LogPosition::START, 100).await? {
        println!("{} {} v{} {}", event.position, event.stream_id, event.stream_version, event.event_type);
    }
    Ok(())
}
// ANCHOR_END: use

tidemark_examples::example_main!(run);

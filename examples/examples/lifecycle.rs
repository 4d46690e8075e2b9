//! Step 9: deleting a stream with a tombstone, and archiving deleted streams.
//!
//! `cargo run -p tidemark-examples --example lifecycle` (PostgreSQL at `DATABASE_URL`,
//! or postgres://postgres@127.0.0.1:5432/test)

use std::sync::Arc;
use std::time::Duration;

use tidemark::{
    Aggregate, CommandError, CommandHandler, CommandOptions, Error, EventCodec, EventStore, ExpectedVersion, StreamId,
    StreamVersion,
};
use tidemark_examples::account::{Account, AccountCommand};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{ArchivePolicy, PgEventStore, PgStoreConfig};

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_life");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    store.migrate().await?;
    let outcome = delete_and_archive(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn delete_and_archive(store: &PgEventStore) -> Result<(), BoxError> {
    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 7)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    // ANCHOR: tombstone
    // The tombstone takes the next version, under the expected version's check.
    let deleted = store.tombstone(&id, ExpectedVersion::Exact(StreamVersion(1))).await?;
    println!("{id} deleted: tombstone at version {}", deleted.version);

    // Every later append fails, and so does loading the aggregate.
    match accounts.handle(&id, &AccountCommand::Deposit { cents: 5 }, &CommandOptions::new()).await {
        Err(CommandError::Store(Error::StreamDeleted { version, .. })) => println!("refused: deleted at {version}"),
        other => return Err(format!("expected a deleted stream, got {other:?}").into()),
    }
    // Its events stay readable, the tombstone last.
    let events = store.read_stream(&id, StreamVersion(1), 10).await?;
    assert!(events.last().is_some_and(|e| e.is_tombstone()));
    // ANCHOR_END: tombstone

    // ANCHOR: archive
    // Move the events of streams deleted more than 90 days ago into `archived_events`.
    // By default only what every relay has published moves; this store has no relay.
    let policy = ArchivePolicy::default().older_than(Duration::from_secs(90 * 24 * 3600));
    let report = store.archive(&policy.relayed_only(false)).await?;
    println!("archived {} streams, {} events", report.streams, report.events);
    // ANCHOR_END: archive
    let now = store.archive(&ArchivePolicy::default().older_than(Duration::ZERO).relayed_only(false)).await?;
    assert_eq!((now.streams, now.events), (1, 1));
    assert_eq!(store.read_stream(&id, StreamVersion(1), 10).await?.len(), 2, "archived events still read");
    Ok(())
}

tidemark_examples::example_main!(run);

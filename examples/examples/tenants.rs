//! Step 12: tenants. Each tenant sees the store through a view of its own; a stream
//! belongs to the tenant of its first event, and the database refuses anyone else's
//! events on it.
//!
//! `cargo run -p tidemark-examples --example tenants` (PostgreSQL at `DATABASE_URL`,
//! or postgres://postgres@127.0.0.1:5432/test)

use std::sync::Arc;
use std::time::Duration;

use tidemark::{
    Aggregate, AppendRequest, CommandError, CommandHandler, CommandOptions, Error, EventCodec, EventStore,
    ExpectedVersion, LogPosition, Metadata, NewEvent, StreamId,
};
use tidemark_examples::account::{Account, AccountCommand, AccountError, AccountEvent, Deposited};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_tenants");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    store.migrate().await?;
    let outcome = tenants(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn tenants(store: &PgEventStore) -> Result<(), BoxError> {
    // ANCHOR: views
    // One view per tenant: its reads see only the tenant's streams, and its appends
    // stamp the tenant on every event.
    let acme = store.for_tenant("acme")?;
    let globex = store.for_tenant("globex")?;
    let codec = Arc::new(EventCodec::without_upcasters()?);
    let acme_accounts = CommandHandler::<Account, _>::new(acme.clone(), codec.clone());
    let globex_accounts = CommandHandler::<Account, _>::new(globex.clone(), codec);

    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    acme_accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    // ANCHOR_END: views

    // ANCHOR: isolation
    // To globex, acme's account does not exist: it reads as an empty stream.
    match globex_accounts.handle(&id, &AccountCommand::Deposit { cents: 100 }, &CommandOptions::new()).await {
        Err(CommandError::Rejected(AccountError::NotOpen)) => println!("globex cannot see acme's account"),
        other => return Err(format!("expected NotOpen, got {other:?}").into()),
    }
    // Nor can globex write into it: the database refuses another tenant's event.
    let deposit = NewEvent::from_domain(&AccountEvent::Deposited(Deposited { cents: 100 }), Metadata::new())?;
    match globex.append(AppendRequest::new(id.clone(), ExpectedVersion::Any, vec![deposit])).await {
        Err(Error::TenantMismatch { stream_tenant, tenant, .. }) => {
            println!("refused: the stream is {stream_tenant:?}'s, the event {tenant:?}'s");
        }
        other => return Err(format!("expected a tenant mismatch, got {other:?}").into()),
    }
    // Each view's log holds its tenant's events only.
    acme.wait_for_log(LogPosition::START, Duration::from_secs(30)).await?;
    assert_eq!(acme.read_log(LogPosition::START, 100).await?.len(), 1);
    assert!(globex.read_log(LogPosition::START, 100).await?.is_empty());
    // ANCHOR_END: isolation
    Ok(())
}

tidemark_examples::example_main!(run);

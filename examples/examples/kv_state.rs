//! Step 11: publishing state to a KV bucket. A `KvProjection` keeps each account's current
//! document in a JetStream KV bucket, for other services to read without replaying events;
//! a projection runner drives it from the relay's stream like any projection.
//!
//! `cargo run -p tidemark-examples --example kv_state` (PostgreSQL as in step 2, and
//! nats-server with JetStream at `NATS_URL` or nats://127.0.0.1:4222)

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidemark::{Aggregate, CommandHandler, CommandOptions, EventCodec, StreamId};
use tidemark_examples::account::{Account, AccountCommand, AccountEvent};
use tidemark_examples::{database_url, delete_stream, drop_schemas, nats_url, unique, BoxError};
use tidemark_nats::{ensure_kv_bucket, JetStreamFeed, KvProjection, NatsRelay, RelayConfig, StreamSettings};
use tidemark_nats::{MessageKey, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;
use tokio_util::sync::CancellationToken;

// ANCHOR: document
/// What other services read under key `account-<n>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AccountSummary {
    owner: String,
    balance_cents: i64,
}

/// A pure function: the summary so far (none before the first event) and the next event
/// give the new summary; returning `None` would delete the key.
fn summarise(summary: Option<AccountSummary>, event: &tidemark::Envelope<AccountEvent>) -> Option<AccountSummary> {
    let mut summary = summary.unwrap_or(AccountSummary { owner: String::new(), balance_cents: 0 });
    match &event.event {
        AccountEvent::Opened(opened) => summary.owner.clone_from(&opened.owner),
        AccountEvent::Deposited(deposit) => summary.balance_cents += deposit.cents,
        AccountEvent::Withdrawn(withdrawal) => summary.balance_cents -= withdrawal.cents,
    }
    Some(summary)
}
// ANCHOR_END: document

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_kv");
    let (stream, bucket) = (schema.to_uppercase(), format!("{}_ACCOUNTS", schema.to_uppercase()));
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let client = async_nats::connect(nats_url()).await?;
    let outcome = publish(&store, &client, &stream, &bucket).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let deleted_bucket = jetstream.delete_key_value(&bucket).await.map(|_| ()).map_err(BoxError::from);
    let deleted = delete_stream(&client, &stream).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome.and(deleted_bucket).and(deleted)
}

async fn publish(
    store: &PgEventStore,
    client: &async_nats::Client,
    stream: &str,
    bucket: &str,
) -> Result<(), BoxError> {
    store.migrate().await?;
    let read_models = PgReadModels::new(store);
    read_models.migrate().await?;
    let shutdown = CancellationToken::new();
    let scheme = SubjectScheme::new(format!("{}.events", stream.to_lowercase()), 4)?;
    let relay = NatsRelay::new(store.clone(), client.clone(), RelayConfig::new("main").subjects(scheme.clone()))?;
    relay.ensure_stream(&StreamSettings::new(stream)).await?;
    let relaying = tokio::spawn({
        let (relay, stop) = (relay.clone(), shutdown.clone());
        async move { relay.run(stop).await }
    });

    // ANCHOR: runner
    let jetstream = async_nats::jetstream::new(client.clone());
    let kv = ensure_kv_bucket(&jetstream, bucket).await?; // created when missing
    let codec = EventCodec::without_upcasters()?;
    let projection = KvProjection::new("account_summaries", codec, jetstream.clone(), kv, summarise)?;
    let feed = JetStreamFeed::new(jetstream.clone(), stream, scheme).with_message_key(MessageKey::load(store).await?);
    // Checkpoints, partitions, dead letters and lag are kept by the runner, in PostgreSQL.
    let runner = ProjectionRunner::new(projection, read_models, store.clone(), feed, RunnerConfig::default())?;
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });
    // ANCHOR_END: runner

    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    let outcome = accounts.handle(&id, &AccountCommand::Deposit { cents: 250 }, &CommandOptions::new()).await?;
    runner.wait_for_append(&outcome, Duration::from_secs(30)).await?;

    // ANCHOR: read
    // Another service needs nothing of tidemark: a KV client and the key.
    let summaries = async_nats::jetstream::new(client.clone()).get_key_value(bucket).await?;
    let value = summaries.get(id.as_str()).await?.ok_or("no summary")?;
    let summary: AccountSummary = serde_json::from_slice(&value)?;
    // ANCHOR_END: read
    println!("{id}: {summary:?}");
    assert_eq!(summary, AccountSummary { owner: "ada".into(), balance_cents: 250 });

    shutdown.cancel();
    relaying.await??;
    running.await??;
    Ok(())
}

tidemark_examples::example_main!(run);

//! Step 5: the deployment for several processes. The relay publishes the store's log to a
//! JetStream stream; a projection runner reads it and shares its partitions with any
//! other instance of the same projection through PostgreSQL advisory locks.
//!
//! `cargo run -p tidemark-examples --example relay_runner` (PostgreSQL as in step 2, and
//! nats-server with JetStream at `NATS_URL` or nats://127.0.0.1:4222)

use std::sync::Arc;
use std::time::Duration;

use tidemark::{Aggregate, CommandHandler, CommandOptions, EventCodec, StreamId};
use tidemark_examples::account::{Account, AccountCommand};
use tidemark_examples::balances::{balance, Balances};
use tidemark_examples::{database_url, delete_stream, drop_schemas, nats_url, unique, BoxError};
use tidemark_nats::{JetStreamFeed, MessageKey, NatsRelay, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{Coordination, PgReadModels};
use tokio_util::sync::CancellationToken;

/// Names of this run: a schema, a JetStream stream and a subject prefix.
struct Names {
    schema: String,
    stream: String,
    subjects: String,
}

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_relay");
    let names = Names { stream: schema.to_uppercase(), subjects: format!("{schema}.events"), schema };
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&names.schema)).await?;
    let client = async_nats::connect(nats_url()).await?;
    let outcome = relay_and_project(&store, &client, &names).await;
    let deleted = delete_stream(&client, &names.stream).await;
    drop_schemas(store.pool(), &names.schema).await?;
    outcome.and(deleted)
}

async fn relay_and_project(store: &PgEventStore, client: &async_nats::Client, names: &Names) -> Result<(), BoxError> {
    store.migrate().await?;
    let read_models = PgReadModels::new(store);
    read_models.migrate().await?;
    let shutdown = CancellationToken::new();

    // ANCHOR: relay
    // Subjects: <prefix>.<partition>.<category>.<EventType>.v<N>; choose the partitions once.
    let scheme = SubjectScheme::new(&names.subjects, 4)?;
    let relay = NatsRelay::new(store.clone(), client.clone(), RelayConfig::new("main").subjects(scheme.clone()))?;
    relay.ensure_stream(&StreamSettings::new(&names.stream)).await?; // create or update
    let relaying = tokio::spawn({
        let (relay, stop) = (relay.clone(), shutdown.clone());
        async move { relay.run(stop).await } // relays named "main" elect one leader
    });
    // ANCHOR_END: relay

    // ANCHOR: runner
    // The relay signs every message with the store's key: a feed holding it takes signed
    // events in without asking the store whether it holds them.
    let jetstream = async_nats::jetstream::new(client.clone());
    let feed = JetStreamFeed::new(jetstream, &names.stream, scheme).with_message_key(MessageKey::load(store).await?);
    let runner =
        ProjectionRunner::new(Balances::new()?, read_models.clone(), store.clone(), feed, RunnerConfig::default())?;
    // Every process running this shares the 4 partitions; a survivor takes a dead one's.
    let coordination = Coordination::postgres(store.pool().clone(), &names.schema);
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run_shared(coordination, stop).await }
    });
    // ANCHOR_END: runner

    let accounts = CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?));
    let mut last = None;
    for n in 1..=3 {
        let id = StreamId::for_entity(Account::CATEGORY, n)?;
        accounts.handle(&id, &AccountCommand::Open { owner: format!("owner {n}") }, &CommandOptions::new()).await?;
        let cents = 100 * i64::from(n);
        last =
            Some((id.clone(), accounts.handle(&id, &AccountCommand::Deposit { cents }, &CommandOptions::new()).await?));
    }
    let (id, outcome) = last.ok_or("no account")?;
    // Store → relay → JetStream → runner → table.
    runner.wait_for_append(&outcome, Duration::from_secs(30)).await?;
    println!("{id}: {:?} cents, relay {:?}", balance(&read_models, &id).await?, relay.status().role);
    assert_eq!(balance(&read_models, &id).await?, Some(300));

    shutdown.cancel();
    relaying.await??;
    running.await??;
    Ok(())
}

tidemark_examples::example_main!(run);

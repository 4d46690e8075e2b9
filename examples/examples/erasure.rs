//! Step 10: erasing personal data from an append-only log by crypto-shredding. The
//! personal fields of an event are stored sealed with a key per data subject; forgetting
//! the subject destroys the key, and every read then gives a placeholder.
//!
//! `cargo run -p tidemark-examples --example erasure` (PostgreSQL as in step 2)

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark::{
    AppendRequest, EventCodec, EventStore, ExpectedVersion, Metadata, NewEvent, PersonalData, PersonalError,
    PersonalFields, ShreddingStore, StreamId, StreamVersion,
};
use tidemark_examples::balances::Balances;
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgPersonalKeys, PgStoreConfig};
use tidemark_projections::{InProcessBus, ProjectionRunner, RevealingFeed, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;

// ANCHOR: events
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registered {
    customer: String, // the data subject's id: stays in plain text
    email: String,    // personal: stored sealed
}

tidemark::domain_events! {
    /// What happens to a customer.
    #[derive(Debug, Clone, PartialEq)]
    pub enum CustomerEvent {
        /// A customer registered.
        Registered(Registered) = ("CustomerRegistered", 1),
    }
}
// ANCHOR_END: events

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_erasure");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = erase(&store, &schema).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn erase(raw: &PgEventStore, schema: &str) -> Result<(), BoxError> {
    raw.migrate().await?; // the store's migrations include the `personal_keys` table

    // ANCHOR: wrap
    // Which stored event types hold personal data: the subject id's JSON pointer, and the
    // pointers of the fields to seal with that subject's key.
    let fields = PersonalFields::new("CustomerRegistered", "/customer").field("/email");
    let data = Arc::new(PersonalData::new([fields])?);
    let keys = PgPersonalKeys::new(raw.pool().clone(), schema, data.clone())?;
    // Appends through `store` seal; reads through it reveal. Command handlers, runners and
    // rebuilds take `store` in place of the raw store; the relay keeps the raw one, so it
    // publishes the stored, sealed payload.
    let store = ShreddingStore::new(raw.clone(), data.clone(), keys.clone());
    // ANCHOR_END: wrap

    // ANCHOR: use
    let id = StreamId::new("customer-1")?;
    let event = CustomerEvent::from(Registered { customer: "c-1".into(), email: "ada@example.com".into() });
    let event = NewEvent::from_domain(&event, Metadata::new())?;
    store.append(AppendRequest::new(id.clone(), ExpectedVersion::NoStream, vec![event])).await?;

    let stored = raw.read_stream(&id, StreamVersion(1), 1).await?;
    println!("stored: {}", stored[0].payload); // {"customer":"c-1","email":"tmk:pd1:…"}
    assert!(!stored[0].payload.get().contains("ada@"));

    let codec = EventCodec::<CustomerEvent>::without_upcasters()?;
    let CustomerEvent::Registered(read) = codec.decode_event(&store.read_stream(&id, StreamVersion(1), 1).await?[0])?;
    assert_eq!(read.email, "ada@example.com");

    // The customer asks to be forgotten: the key is destroyed, the snapshots of the
    // streams holding the subject's events are deleted, in one transaction.
    let report = keys.forget_subject("c-1").await?;
    println!("{report:?}");
    let CustomerEvent::Registered(read) = codec.decode_event(&store.read_stream(&id, StreamVersion(1), 1).await?[0])?;
    assert_eq!(read.email, "[forgotten]"); // tidemark::FORGOTTEN

    // New personal data for a forgotten subject is refused; nothing is written.
    let again = CustomerEvent::from(Registered { customer: "c-1".into(), email: "ada@example.org".into() });
    let again =
        AppendRequest::new(id.clone(), ExpectedVersion::Any, vec![NewEvent::from_domain(&again, Metadata::new())?]);
    let refused = store.append(again).await;
    assert!(matches!(refused, Err(tidemark::Error::Personal(PersonalError::Forgotten { .. }))));
    // ANCHOR_END: use

    // ANCHOR: runner
    // Runners reveal what their feed delivers (JetStream carries the sealed payload), and
    // read gap repairs and rebuilds through the wrapping store. Read models built before
    // a forget still hold what they were given: rebuild those that copy personal fields.
    let read_models = PgReadModels::new(raw);
    read_models.migrate().await?;
    let feed = RevealingFeed::new(InProcessBus::new(4)?, data, keys);
    let runner = ProjectionRunner::new(Balances::new()?, read_models, store, feed, RunnerConfig::default())?;
    runner.prepare().await?;
    // ANCHOR_END: runner
    Ok(())
}

tidemark_examples::example_main!(run);

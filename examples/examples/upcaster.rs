//! Step 7: changing an event. Stored events are never rewritten: the codec brings old
//! schema versions up to the current one on every read, and a chain with a missing step
//! fails when the codec is built (at start-up), not in the middle of a rebuild.
//!
//! `cargo run -p tidemark-examples --example upcaster`

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tidemark::{
    AppendRequest, EventCodec, EventStore, ExpectedVersion, Metadata, NewEvent, RegistryError, StreamId, StreamVersion,
};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};

// ANCHOR: v2
// Version 1 of "AccountOpened" was `{"owner": "..."}`; version 2 adds the currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Opened {
    owner: String,
    currency: String,
}

tidemark::domain_events! {
    /// What happens to an account, in the current schema.
    #[derive(Debug, Clone, PartialEq)]
    pub enum AccountEvent {
        /// Opened, with a currency since version 2.
        Opened(Opened) = ("AccountOpened", 2),
    }
}

fn codec() -> Result<EventCodec<AccountEvent>, RegistryError> {
    EventCodec::builder()
        .upcast("AccountOpened", 1, |mut v1| {
            v1["currency"] = "EUR".into(); // every account opened before v2 was in euros
            Ok(v1)
        })
        .build()
}
// ANCHOR_END: v2

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_upcast");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = read_old_events(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn read_old_events(store: &PgEventStore) -> Result<(), BoxError> {
    store.migrate().await?;
    // ANCHOR: read
    // An event the old code stored, as it was stored.
    let v1 = NewEvent::new("AccountOpened", 1, RawValue::from_string(r#"{"owner":"ada"}"#.into())?);
    let old = StreamId::new("account-1")?;
    store.append(AppendRequest::new(old.clone(), ExpectedVersion::NoStream, vec![v1])).await?;

    // An event of the current code.
    let v2 = Opened { owner: "grace".into(), currency: "JPY".into() };
    let new = StreamId::new("account-2")?;
    let event = NewEvent::from_domain(&AccountEvent::from(v2), Metadata::new())?;
    store.append(AppendRequest::new(new.clone(), ExpectedVersion::NoStream, vec![event])).await?;

    let codec = codec()?;
    for stream in [&old, &new] {
        let stored = store.read_stream(stream, StreamVersion(1), 10).await?;
        let envelope = codec.decode(&stored[0])?; // upcast on the way in
        println!("{stream}: stored as v{}, read as {:?}", stored[0].schema_version, envelope.event);
    }
    let stored = store.read_stream(&old, StreamVersion(1), 10).await?;
    assert_eq!(stored[0].schema_version, 1); // the stored event is unchanged
    let AccountEvent::Opened(opened) = codec.decode_event(&stored[0])?;
    assert_eq!(opened.currency, "EUR");

    // Without the step from version 1, the codec is refused when it is built.
    let missing = EventCodec::<AccountEvent>::without_upcasters();
    assert!(matches!(missing, Err(RegistryError::MissingStep { .. })));
    // ANCHOR_END: read
    Ok(())
}

tidemark_examples::example_main!(run);

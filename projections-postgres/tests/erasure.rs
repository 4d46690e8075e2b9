//! Crypto-shredding end to end, on real PostgreSQL and JetStream: a personal value is
//! appended sealed, relayed, projected (revealed) and snapshotted; after `forget` and a
//! rebuild, no table of the test's schemas and no message of the JetStream stream holds
//! it in any readable form, while before the forget it could be read back.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tidemark::{
    reveal_events, AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, NewEvent, PersonalData,
    PersonalFields, RecordedEvent, RegistryError, ShreddingStore, Snapshot, StreamId, StreamVersion, FORGOTTEN,
};
use tidemark_nats::RelayConfig;
use tidemark_postgres::{PgEventStore, PgPersonalKeys};
use tidemark_projections::{ApplyError, Projection, ProjectionRunner, RebuildOptions, RevealingFeed, RunnerConfig};
use tidemark_projections_postgres::{PgReadModels, PgTx};

use support::nats::{spawn_relay, spawn_runner, Bench};

const SECRET: &str = "Hedy Lamarr, 12 Frequency Lane";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registered {
    customer: String,
    contact: String,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum CustomerEvent {
        Registered(Registered) = ("CustomerRegistered", 1),
    }
}

/// `contacts(customer, contact)`: a read model that copies the personal value.
struct Contacts(EventCodec<CustomerEvent>);

impl Projection<PgReadModels> for Contacts {
    type Event = CustomerEvent;

    fn name(&self) -> &str {
        "contacts"
    }

    fn codec(&self) -> &EventCodec<CustomerEvent> {
        &self.0
    }

    async fn setup(&self, tx: &mut PgTx) -> Result<(), ApplyError> {
        sqlx::query("CREATE TABLE contacts (customer text PRIMARY KEY, contact text NOT NULL)")
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    async fn apply(&self, tx: &mut PgTx, event: &Envelope<CustomerEvent>) -> Result<(), ApplyError> {
        let CustomerEvent::Registered(e) = &event.event;
        sqlx::query("INSERT INTO contacts VALUES ($1, $2) ON CONFLICT (customer) DO UPDATE SET contact = $2")
            .bind(&e.customer)
            .bind(&e.contact)
            .execute(tx.conn())
            .await?;
        Ok(())
    }
}

fn contacts() -> Result<Contacts, RegistryError> {
    Ok(Contacts(EventCodec::without_upcasters()?))
}

/// Standard base64 (with padding) of `bytes`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i)) as usize & 63] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

/// Every readable form of the secret searched for: the text, a distinctive part of it, its
/// hex, and its base64 at the three alignments it can take inside a longer text.
fn forms() -> Vec<String> {
    let mut forms = vec![SECRET.to_owned(), "Frequency Lane".to_owned(), hex_of(SECRET.as_bytes())];
    for shift in 0..3 {
        let mut shifted = vec![b'x'; shift];
        shifted.extend_from_slice(SECRET.as_bytes());
        let encoded = base64(&shifted);
        // Drop the characters that mix in the padding bytes or the end.
        let start = (shift * 4).div_ceil(3);
        forms.push(encoded[start..encoded.len() - 4].to_owned());
    }
    forms
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn found_in<'a>(haystacks: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let forms = forms();
    let mut found = Vec::new();
    for text in haystacks {
        for form in &forms {
            if text.contains(form.as_str()) {
                found.push(format!("{form:?} in {}", &text[..text.len().min(200)]));
            }
        }
    }
    found
}

/// Every row of every table of the store's schema and the projections' schemas, as text.
async fn dump_tables(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE (table_schema = $1 OR starts_with(table_schema, $1 || '_')) AND table_type = 'BASE TABLE'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("list tables");
    assert!(tables.iter().any(|(_, t)| t == "personal_keys") && tables.iter().any(|(_, t)| t == "contacts"));
    let mut rows = Vec::new();
    for (schema, table) in tables {
        let sql = format!("SELECT '{schema}.{table}: ' || t::text FROM \"{schema}\".\"{table}\" t");
        let found: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.expect("dump");
        rows.extend(found);
    }
    rows
}

/// Every message of the JetStream stream, read by a plain pull consumer: its headers are
/// checked here, its payload returned (as an event, so the test can try the keys on it).
async fn dump_stream(bench: &Bench) -> Vec<RecordedEvent> {
    let js = bench.jetstream();
    let mut stream = js.get_stream(&bench.settings.name).await.expect("stream");
    let count = stream.info().await.expect("info").state.messages as usize;
    assert!(count > 0);
    let config = async_nats::jetstream::consumer::pull::Config {
        ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
        ..Default::default()
    };
    let consumer = stream.create_consumer(config).await.expect("consumer");
    let mut batch =
        consumer.fetch().max_messages(count).expires(Duration::from_secs(5)).messages().await.expect("fetch");
    let mut events = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.expect("message");
        let text = String::from_utf8(message.payload.to_vec()).expect("utf-8");
        let headers = format!("{:?}", message.headers);
        assert!(found_in([&headers]).is_empty(), "headers hold no personal data: {headers}");
        events.push(as_recorded(text));
    }
    assert_eq!(events.len(), count, "every message was read");
    events
}

/// The message as a stored event of the registered type, to reveal it with the keys.
fn as_recorded(text: String) -> RecordedEvent {
    RecordedEvent {
        event_id: tidemark::EventId::new(),
        stream_id: StreamId::new("customer-1").expect("id"),
        stream_version: StreamVersion(1),
        position: tidemark::LogPosition::START,
        event_type: "CustomerRegistered".to_owned(),
        schema_version: 1,
        payload: serde_json::value::RawValue::from_string(text).expect("json"),
        metadata: tidemark::Metadata::default(),
        recorded_at: chrono::Utc::now(),
    }
}

async fn contact_of(read_models: &PgReadModels, customer: &str) -> Option<String> {
    let schema = read_models.projection_schema("contacts");
    sqlx::query_scalar(&format!("SELECT contact FROM \"{schema}\".contacts WHERE customer = $1"))
        .bind(customer)
        .fetch_optional(read_models.pool())
        .await
        .expect("query")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_forget_and_rebuild_no_copy_of_the_personal_value_is_readable() {
    let bench = Bench::new(2).await;
    let fields = PersonalFields::new("CustomerRegistered", "/customer").field("/contact");
    let data = Arc::new(PersonalData::new([fields]).expect("registry"));
    let keys = PgPersonalKeys::new(bench.schema.pool().clone(), bench.schema.name(), data.clone()).expect("keys");
    let store: ShreddingStore<PgEventStore, PgPersonalKeys> =
        ShreddingStore::new(bench.store.clone(), data.clone(), keys.clone());

    // Two customers; only the first is forgotten.
    let mut appended = Vec::new();
    for (n, contact) in [(1, SECRET), (2, "Ada, 1 Engine Street")] {
        let payload = Registered { customer: format!("c-{n}"), contact: contact.to_owned() };
        let event = NewEvent::from_domain(&CustomerEvent::from(payload), tidemark::Metadata::default()).expect("event");
        let stream = StreamId::new(format!("customer-{n}")).expect("id");
        appended.push(
            store.append(AppendRequest::new(stream, ExpectedVersion::NoStream, vec![event])).await.expect("append"),
        );
    }
    // An aggregate snapshot holding the value in plain text.
    let snapshot = Snapshot {
        stream_id: StreamId::new("customer-1").expect("id"),
        schema_version: 1,
        stream_version: StreamVersion(1),
        state: serde_json::json!({ "contact": SECRET }),
        taken_at: chrono::Utc::now(),
    };
    store.save_snapshot(snapshot).await.expect("snapshot");

    let relay = bench.relay(RelayConfig::new("main")).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let feed = RevealingFeed::new(bench.feed(), data.clone(), keys.clone());
    let config = RunnerConfig::default().backoff(Duration::from_millis(20), Duration::from_millis(200));
    let runner =
        ProjectionRunner::new(contacts().expect("codec"), bench.read_models.clone(), store.clone(), feed, config)
            .expect("runner");
    runner.set_up().await.expect("set up");
    let (stop_runner, runner_task) = spawn_runner(&runner);
    // Each append: the two streams may sit in different partitions, applied independently.
    for outcome in &appended {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("projected");
    }

    // Before the forget: the value is readable through every read path, and in the
    // projection's table and the snapshot; the events table and JetStream hold only ciphertext.
    assert_eq!(contact_of(&bench.read_models, "c-1").await.as_deref(), Some(SECRET));
    let read = store.read_stream(&StreamId::new("customer-1").expect("id"), StreamVersion(1), 1).await.expect("read");
    assert!(read[0].payload.get().contains(SECRET));
    let before = found_in(&dump_tables(bench.schema.pool(), bench.schema.name()).await);
    assert!(before.iter().any(|f| f.contains(".contacts:")), "{before:?}");
    assert!(before.iter().any(|f| f.contains(".snapshots:")), "{before:?}");
    assert!(!before.iter().any(|f| f.contains(".events:")), "events hold only ciphertext: {before:?}");
    let mut messages = dump_stream(&bench).await;
    let raw: Vec<String> = messages.iter().map(|m| m.payload.get().to_owned()).collect();
    assert!(found_in(&raw).is_empty(), "JetStream never holds plaintext");
    reveal_events(&data, &keys, &mut messages).await.expect("reveal the broker's copies");
    assert!(messages.iter().any(|m| m.payload.get().contains(SECRET)), "the broker's copy opened with the key");

    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");

    // Forget, then rebuild the read model from the log.
    let report = keys.forget_subject("c-1").await.expect("forget");
    assert!(report.key_destroyed);
    assert_eq!((report.streams.as_slice(), report.snapshots_deleted), (&["customer-1".to_owned()][..], 1));
    runner.rebuild(RebuildOptions::default(), &mut |_| {}).await.expect("rebuild");
    assert_eq!(contact_of(&bench.read_models, "c-1").await.as_deref(), Some(FORGOTTEN));
    assert_eq!(contact_of(&bench.read_models, "c-2").await.as_deref(), Some("Ada, 1 Engine Street"));

    // After: nothing anywhere, in any form; the broker's copies now reveal the placeholder.
    let after = found_in(&dump_tables(bench.schema.pool(), bench.schema.name()).await);
    assert!(after.is_empty(), "{after:?}");
    let mut messages = dump_stream(&bench).await;
    let raw: Vec<String> = messages.iter().map(|m| m.payload.get().to_owned()).collect();
    assert!(found_in(&raw).is_empty());
    let mut first: Vec<RecordedEvent> =
        messages.iter().filter(|m| m.payload.get().contains("\"c-1\"")).cloned().collect();
    assert_eq!(first.len(), 1);
    reveal_events(&data, &keys, &mut first).await.expect("reveal");
    assert!(first[0].payload.get().contains(FORGOTTEN), "{}", first[0].payload.get());
    messages.retain(|m| m.payload.get().contains("\"c-2\""));
    reveal_events(&data, &keys, &mut messages).await.expect("reveal");
    assert!(messages[0].payload.get().contains("Ada, 1 Engine Street"), "the other subject is untouched");

    // A new append of personal data for the forgotten subject is refused, and writes nothing.
    let payload = Registered { customer: "c-1".to_owned(), contact: SECRET.to_owned() };
    let event = NewEvent::from_domain(&CustomerEvent::from(payload), tidemark::Metadata::default()).expect("event");
    let stream = StreamId::new("customer-1").expect("id");
    let refused = store.append(AppendRequest::new(stream.clone(), ExpectedVersion::Any, vec![event])).await;
    assert!(matches!(refused, Err(tidemark::Error::Personal(tidemark::PersonalError::Forgotten { .. }))));
    assert_eq!(store.stream_version(&stream).await.expect("version"), StreamVersion(1));
    bench.delete_stream().await;
}

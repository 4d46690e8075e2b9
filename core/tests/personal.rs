//! Crypto-shredding through the in-memory store: personal fields are stored sealed, read
//! back revealed, and read as the placeholder once their subject is forgotten; bad input
//! gets a typed error and writes nothing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidemark::{
    read_stream_to_end, AppendRequest, Error, EventCodec, EventStore, ExpectedVersion, InMemoryEventStore,
    InMemoryPersonalKeys, LogPosition, NewEvent, PersonalData, PersonalError, PersonalFields, PersonalKeys,
    ShreddingStore, StreamId, StreamVersion, FORGOTTEN,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registered {
    customer: String,
    name: String,
    #[serde(default)]
    phone: Option<String>,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum CustomerEvent {
        Registered(Registered) = ("CustomerRegistered", 1),
    }
}

type Store = ShreddingStore<InMemoryEventStore, InMemoryPersonalKeys>;

fn store() -> Store {
    let fields = PersonalFields::new("CustomerRegistered", "/customer").field("/name").optional("/phone");
    let data = Arc::new(PersonalData::new([fields]).unwrap());
    ShreddingStore::new(InMemoryEventStore::new(), data, InMemoryPersonalKeys::new())
}

fn event(payload: serde_json::Value) -> NewEvent {
    NewEvent::new("CustomerRegistered", 1, serde_json::value::to_raw_value(&payload).unwrap())
}

async fn append(store: &Store, stream: &str, payload: serde_json::Value) -> tidemark::Result<()> {
    let stream = StreamId::new(stream).unwrap();
    store.append(AppendRequest::new(stream, ExpectedVersion::Any, vec![event(payload)])).await.map(|_| ())
}

async fn stored_text(store: &Store) -> String {
    let events = store.inner().read_log(LogPosition::START, 100).await.unwrap();
    events.iter().map(|e| e.payload.get().to_owned()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn personal_fields_are_stored_sealed_read_revealed_and_forgotten() {
    let store = store();
    append(&store, "customer-1", json!({"customer": "c-1", "name": "Grace Hopper", "phone": "555-0100"}))
        .await
        .unwrap();
    append(&store, "customer-2", json!({"customer": "c-2", "name": "Alan Turing", "phone": null})).await.unwrap();

    let stored = stored_text(&store).await;
    assert!(!stored.contains("Grace") && !stored.contains("555-0100") && !stored.contains("Alan"), "{stored}");
    assert!(stored.contains("c-1") && stored.contains(tidemark::SEALED_PREFIX));

    let codec = EventCodec::<CustomerEvent>::without_upcasters().unwrap();
    let read = store.read_stream(&StreamId::new("customer-1").unwrap(), StreamVersion(1), 10).await.unwrap();
    let CustomerEvent::Registered(r) = codec.decode_event(&read[0]).unwrap();
    assert_eq!((r.name.as_str(), r.phone.as_deref()), ("Grace Hopper", Some("555-0100")));

    assert!(store.keys().forget("c-1").await.unwrap());
    assert!(!store.keys().forget("c-1").await.unwrap(), "a second forget has no key to destroy");
    let log = store.read_log(LogPosition::START, 10).await.unwrap();
    let names: Vec<_> = log
        .iter()
        .map(|e| match codec.decode_event(e).unwrap() {
            CustomerEvent::Registered(r) => (r.name, r.phone),
        })
        .collect();
    assert_eq!(
        names,
        [(FORGOTTEN.to_owned(), Some(FORGOTTEN.to_owned())), ("Alan Turing".to_owned(), None)],
        "the forgotten subject reads as the placeholder, the other one is untouched"
    );

    let again = append(&store, "customer-1", json!({"customer": "c-1", "name": "Grace"})).await;
    assert!(matches!(again, Err(Error::Personal(PersonalError::Forgotten { ref subject })) if subject == "c-1"));
    let keyless = PersonalFields::new("CustomerRegistered", "/customer").optional("/name");
    let keyless = ShreddingStore::new(
        store.inner().clone(),
        Arc::new(PersonalData::new([keyless]).unwrap()),
        store.keys().clone(),
    );
    let none_present = json!({"customer": "c-1", "name": null});
    let stream = StreamId::new("customer-3").unwrap();
    let event = vec![event(none_present)];
    keyless.append(AppendRequest::new(stream.clone(), ExpectedVersion::Any, event)).await.unwrap();
    let read = keyless.read_stream(&stream, StreamVersion(1), 1).await.unwrap();
    assert!(read[0].payload.get().contains("null"), "an event with no personal value present needs no key");
    let stream = read_stream_to_end(&store, &StreamId::new("customer-1").unwrap(), StreamVersion(1), 10).await;
    assert_eq!(stream.unwrap().len(), 1, "the refused append wrote nothing");
}

#[tokio::test]
async fn bad_payloads_get_typed_errors_and_write_nothing() {
    let store = store();
    let missing_subject = append(&store, "s-1", json!({"name": "N"})).await;
    assert!(matches!(missing_subject, Err(Error::Personal(PersonalError::MissingSubject { .. }))));
    let subject_not_text = append(&store, "s-1", json!({"customer": 7, "name": "N"})).await;
    assert!(matches!(subject_not_text, Err(Error::Personal(PersonalError::MissingSubject { .. }))));
    let missing_field = append(&store, "s-1", json!({"customer": "c"})).await;
    assert!(matches!(missing_field, Err(Error::Personal(PersonalError::MissingField { .. }))));
    assert_eq!(store.log_head().await.unwrap(), None, "nothing was written");
}

#[tokio::test]
async fn damaged_plain_or_keyless_stored_values_are_typed_read_errors() {
    let store = store();
    let raw = |stream: &str, payload| {
        let stream = StreamId::new(stream).unwrap();
        store.inner().append(AppendRequest::new(stream, ExpectedVersion::Any, vec![event(payload)]))
    };
    raw("plain", json!({"customer": "c-1", "name": "In Clear"})).await.unwrap();
    let read = store.read_stream(&StreamId::new("plain").unwrap(), StreamVersion(1), 1).await;
    assert!(matches!(read, Err(Error::Personal(PersonalError::UnknownKey { .. }))));

    append(&store, "sealed", json!({"customer": "c-1", "name": "Ok"})).await.unwrap();
    let read = store.read_stream(&StreamId::new("plain").unwrap(), StreamVersion(1), 1).await;
    assert!(matches!(read, Err(Error::Personal(PersonalError::NotSealed { .. }))));

    let sealed = store.inner().read_stream(&StreamId::new("sealed").unwrap(), StreamVersion(1), 1).await.unwrap();
    let mut payload: serde_json::Value = serde_json::from_str(sealed[0].payload.get()).unwrap();
    let text = payload["name"].as_str().unwrap().to_owned();
    payload["name"] = json!(format!("{}00", &text[..text.len() - 2]));
    raw("damaged", payload.clone()).await.unwrap();
    let read = store.read_stream(&StreamId::new("damaged").unwrap(), StreamVersion(1), 1).await;
    assert!(matches!(read, Err(Error::Personal(PersonalError::Corrupt { .. }))));

    payload["customer"] = json!("c-2");
    payload["name"] = json!(text);
    store.keys().keys_for_append(&["c-2".to_owned()]).await.unwrap();
    raw("moved", payload).await.unwrap();
    let read = store.read_stream(&StreamId::new("moved").unwrap(), StreamVersion(1), 1).await;
    assert!(
        matches!(read, Err(Error::Personal(PersonalError::Corrupt { .. }))),
        "a sealed value moved to another subject does not open"
    );
    let stored = store.inner().read_log(LogPosition::START, 10).await.unwrap();
    assert_eq!(stored.len(), 4, "failed reads lose nothing");
}

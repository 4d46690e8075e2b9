//! `events verify`: every stored event through its upcaster chain and decoder.

use serde::Serialize;
use tidemark::{DomainEvent, EventCodec, EventStore, LogPosition, RecordedEvent, StreamVersion};

use crate::error::Result;

/// Decodes stored events of the types it knows. Implemented by every
/// [`EventCodec`]; mount one per event enum into [`Ops`](crate::Ops).
pub trait EventVerifier: Send + Sync {
    /// Whether events stored under this type name belong to this verifier.
    fn handles(&self, event_type: &str) -> bool;
    /// Upcasts and decodes one event, or says why it cannot be.
    fn verify(&self, event: &RecordedEvent) -> std::result::Result<(), tidemark::Error>;
}

impl<E: DomainEvent> EventVerifier for EventCodec<E> {
    fn handles(&self, event_type: &str) -> bool {
        EventCodec::handles(self, event_type)
    }

    fn verify(&self, event: &RecordedEvent) -> std::result::Result<(), tidemark::Error> {
        self.decode_event(event).map(|_| ())
    }
}

/// An event that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyFailure {
    /// Its log position (`"t/s"`).
    pub position: String,
    /// Its id.
    pub event_id: String,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: StreamVersion,
    /// Its stored type name.
    pub event_type: String,
    /// Its stored schema version.
    pub schema_version: u32,
    /// Why it failed.
    pub error: String,
}

/// The result of `events verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Events read.
    pub events: u64,
    /// Events that failed (all of them).
    pub failed: u64,
    /// The first failures (at most 1,000).
    pub failures: Vec<VerifyFailure>,
}

/// How many failures a report lists (it counts them all).
const MAX_LISTED: usize = 1_000;

/// Reads the whole log and runs each event through the verifier that handles its type;
/// an event no verifier handles fails too.
pub async fn verify_log<S: EventStore>(store: &S, verifiers: &[Box<dyn EventVerifier>]) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_log(after, 5_000).await?;
        let Some(last) = page.last() else { return Ok(report) };
        after = last.position;
        for event in &page {
            report.events += 1;
            let outcome = match verifiers.iter().find(|v| v.handles(&event.event_type)) {
                Some(verifier) => verifier.verify(event).map_err(|e| e.to_string()),
                None => Err(format!("no codec knows the event type {:?}", event.event_type)),
            };
            if let Err(error) = outcome {
                report.failed += 1;
                if report.failures.len() < MAX_LISTED {
                    report.failures.push(failure(event, error));
                }
            }
        }
    }
}

fn failure(event: &RecordedEvent, error: String) -> VerifyFailure {
    VerifyFailure {
        position: event.position.to_string(),
        event_id: event.event_id.to_string(),
        stream_id: event.stream_id.to_string(),
        stream_version: event.stream_version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        error,
    }
}

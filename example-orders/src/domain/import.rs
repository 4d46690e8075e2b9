//! Importing fixture events into an event store, idempotently.

use std::collections::HashMap;

use tidemark::{AppendRequest, EventStore, ExpectedVersion, StreamId, StreamVersion};

use super::fixture::{fixture_events, FixtureError, FixtureEvent};

/// Why an import stopped. Events appended before the failure stay: importing again
/// continues where it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The fixture could not be read.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The store failed, or a stream holds fewer events than the fixture's next one needs.
    #[error(transparent)]
    Store(#[from] tidemark::Error),
}

/// Imports the committed fixture; see [`import_events`]. Returns how many events were appended.
pub async fn import_fixture<S: EventStore>(store: &S) -> Result<usize, ImportError> {
    import_events(store, fixture_events()?).await
}

/// Appends fixture events one by one in their recorded order, each at its own stream
/// version (`NoStream` for a first event, `Exact(version - 1)` after), so the global
/// log keeps the original interleaving. Idempotent: an event whose version the stream
/// already holds is skipped, so importing twice appends nothing the second time, and an
/// interrupted import resumes. (Skipped events are not compared with the stored ones.)
/// Returns how many events were appended.
pub async fn import_events<S: EventStore>(store: &S, events: Vec<FixtureEvent>) -> Result<usize, ImportError> {
    let mut versions: HashMap<StreamId, StreamVersion> = HashMap::new();
    let mut appended = 0;
    for fixture in events {
        let current = match versions.get(&fixture.stream_id) {
            Some(version) => *version,
            None => store.stream_version(&fixture.stream_id).await?,
        };
        if current < fixture.stream_version && append_one(store, &fixture).await? {
            appended += 1;
        }
        versions.insert(fixture.stream_id, current.max(fixture.stream_version));
    }
    Ok(appended)
}

/// Appends one event right after its predecessor. `Ok(false)` when another writer
/// stored that version first (a concurrent import).
async fn append_one<S: EventStore>(store: &S, fixture: &FixtureEvent) -> Result<bool, tidemark::Error> {
    let expected = match fixture.stream_version.0.saturating_sub(1) {
        0 => ExpectedVersion::NoStream,
        previous => ExpectedVersion::Exact(StreamVersion(previous)),
    };
    let request = AppendRequest::new(fixture.stream_id.clone(), expected, vec![fixture.event.clone()]);
    match store.append(request).await {
        Ok(_) => Ok(true),
        Err(tidemark::Error::Conflict { actual, .. }) if actual >= fixture.stream_version => Ok(false),
        Err(error) => Err(error),
    }
}

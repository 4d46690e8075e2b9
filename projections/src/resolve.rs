//! Turning a batch of delivered messages into events of the store: every event the
//! broker delivered is checked against the store's identity of it (one call per batch,
//! which returns only the events the store does not confirm), references are read from
//! the store, and anything else is a rogue message.

use std::collections::HashMap;

use tidemark::{EventIdentity, EventStore, RecordedEvent, StreamId, StreamVersion};

use crate::error::Result;
use crate::feed::Incoming;
use crate::letters::RogueMessage;
use crate::projection::Projection;
use crate::read_models::ReadModels;
use crate::worker::{BatchReport, Worker};

/// What a batch resolved to: the events to take in, in delivery order, and the rogue
/// messages to park. It refers to the batch's own events by index, so it can be kept
/// next to the batch (resolved ahead, while the batch before it is applied).
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    picked: Vec<Picked>,
    pub rogue: Vec<RogueMessage>,
}

/// An event to take in: one the batch carries, or one read from the store.
#[derive(Debug)]
enum Picked {
    InBatch(usize),
    Read(Box<RecordedEvent>),
}

impl Resolved {
    /// The events to take in, in order; `batch` is the batch this was resolved from.
    pub(crate) fn events<'a>(&'a self, batch: &'a [Incoming]) -> Vec<&'a RecordedEvent> {
        self.picked
            .iter()
            .filter_map(|picked| match picked {
                Picked::Read(event) => Some(&**event),
                Picked::InBatch(i) => match batch.get(*i) {
                    Some(Incoming::Untrusted(event) | Incoming::Trusted(event)) => Some(event),
                    _ => None,
                },
            })
            .collect()
    }
}

/// The store's identities of the events a batch names, by stream and version.
type Stored<'i> = HashMap<(&'i str, u64), &'i EventIdentity>;

/// The delivered events of a batch the store does not confirm, by index in the batch,
/// with what the store holds at their stream versions.
type Mismatched = HashMap<usize, Option<EventIdentity>>;

fn stored_at<'i>(stored: &Stored<'i>, stream: &StreamId, version: StreamVersion) -> Option<&'i EventIdentity> {
    stored.get(&(stream.as_str(), version.0)).copied()
}

impl<P, R, S> Worker<P, R, S>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Resolves a batch delivered on `partition`.
    pub(crate) async fn resolve(
        &self,
        partition: u32,
        batch: &[Incoming],
        report: &mut BatchReport,
    ) -> Result<Resolved> {
        let (mismatched, identities) = self.check(batch).await?;
        let stored: Stored<'_> = identities.iter().map(|i| ((i.stream_id.as_str(), i.stream_version.0), i)).collect();
        let mut resolved = Resolved::default();
        for (i, message) in batch.iter().enumerate() {
            match message {
                Incoming::Trusted(_) => resolved.picked.push(Picked::InBatch(i)),
                Incoming::Untrusted(event) => {
                    let found = mismatched.get(&i).map(Option::as_ref);
                    match found.and_then(|found| disagreement(event, found).map(|reason| (found, reason))) {
                        None => resolved.picked.push(Picked::InBatch(i)),
                        Some((found, reason)) => {
                            let claim = (&event.stream_id, event.stream_version, event.event_id);
                            let rogue = RogueMessage::new(format!("event {}", event.event_id), partition, "", reason);
                            resolved.rogue.push(rogue.claiming(claim.0.clone(), claim.1, claim.2));
                            self.recover(found, event.event_id, &mut resolved).await?;
                        }
                    }
                }
                Incoming::Reference { event_id, stream_id, stream_version } => {
                    let found = stored_at(&stored, stream_id, *stream_version);
                    if !self.recover(found, *event_id, &mut resolved).await? {
                        let reason = format!(
                            "refers to event {event_id} at {stream_id}@{stream_version}, which the store does not hold"
                        );
                        let rogue = RogueMessage::new(format!("event {event_id}"), partition, "", reason);
                        resolved.rogue.push(rogue.claiming(stream_id.clone(), *stream_version, *event_id));
                    }
                }
                Incoming::Copy { .. } => {}
                Incoming::Rogue { message, recover } => {
                    resolved.rogue.push((**message).clone());
                    if let (true, Some(stream), Some(version), Some(id)) =
                        (*recover, &message.stream_id, message.stream_version, message.event_id)
                    {
                        let found = stored_at(&stored, stream, version);
                        self.recover(found, id, &mut resolved).await?;
                    }
                }
            }
        }
        for rogue in &resolved.rogue {
            tracing::error!(projection = %self.name, partition, key = %rogue.key, subject = %rogue.subject,
                reason = %rogue.reason, "parked a message that is not an event of the store");
        }
        report.rogue += resolved.rogue.len() as u64;
        Ok(resolved)
    }

    /// Checks the batch against the store, in one round trip: the delivered events the
    /// store does not confirm, by index in the batch, with what it holds at their stream
    /// versions; and the store's identities at the versions that references and
    /// recoverable rogue messages name.
    async fn check(&self, batch: &[Incoming]) -> Result<(Mismatched, Vec<EventIdentity>)> {
        let (indexes, events): (Vec<usize>, Vec<&RecordedEvent>) = batch
            .iter()
            .enumerate()
            .filter_map(|(i, message)| match message {
                Incoming::Untrusted(event) => Some((i, event)),
                _ => None,
            })
            .unzip();
        let named: Vec<(StreamId, StreamVersion)> = batch.iter().filter_map(named_version).collect();
        let verify = async {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            self.store.verify_events(&events).await
        };
        let read = async {
            if named.is_empty() {
                return Ok(Vec::new());
            }
            self.store.identities(&named).await
        };
        let (mismatches, identities) = tokio::try_join!(verify, read)?;
        let mismatched = mismatches.into_iter().filter_map(|m| Some((*indexes.get(m.index)?, m.stored))).collect();
        Ok((mismatched, identities))
    }

    /// Reads the stored event `found` from the store when it has id `event_id`, and adds
    /// it to the batch's events. Returns whether it did.
    async fn recover(
        &self,
        found: Option<&EventIdentity>,
        event_id: tidemark::EventId,
        into: &mut Resolved,
    ) -> Result<bool> {
        let Some(found) = found.filter(|f| f.event_id == event_id) else { return Ok(false) };
        let event = self.store.read_stream(&found.stream_id, found.stream_version, 1).await?.into_iter().next();
        let Some(event) = event.filter(|e| e.event_id == event_id) else { return Ok(false) };
        into.picked.push(Picked::Read(Box::new(event)));
        Ok(true)
    }
}

/// The stream version a reference or a recoverable rogue message names, if any.
fn named_version(message: &Incoming) -> Option<(StreamId, StreamVersion)> {
    match message {
        Incoming::Reference { stream_id, stream_version, .. } => Some((stream_id.clone(), *stream_version)),
        Incoming::Rogue { message, recover: true } => Some((message.stream_id.clone()?, message.stream_version?)),
        _ => None,
    }
}

/// How a delivered event differs from the event the store holds at its stream version.
fn disagreement(event: &RecordedEvent, stored: Option<&EventIdentity>) -> Option<String> {
    let at = format!("{}@{}", event.stream_id, event.stream_version);
    let Some(stored) = stored else {
        return Some(format!("claims to be event {} at {at}, but the store holds no event there", event.event_id));
    };
    if stored.event_id != event.event_id {
        return Some(format!(
            "claims to be event {} at {at}, but the store holds event {} there",
            event.event_id, stored.event_id
        ));
    }
    let claimed = (event.event_type.as_str(), event.schema_version, event.position);
    let actual = (stored.event_type.as_str(), stored.schema_version, stored.position);
    (claimed != actual).then(|| {
        format!(
            "headers disagree with the stored event {}: {} v{} at {} (stored: {} v{} at {})",
            event.event_id, claimed.0, claimed.1, claimed.2, actual.0, actual.1, actual.2
        )
    })
}

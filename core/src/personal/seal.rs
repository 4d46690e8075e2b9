//! Sealing the personal fields of events before they are stored, and revealing them
//! (or putting the placeholder) after they are read.

use std::borrow::BorrowMut;
use std::collections::{BTreeSet, HashMap};

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;

use super::cipher::{is_sealed, open, seal};
use super::error::PersonalError;
use super::keys::{KeyState, PersonalKeys};
use super::registry::{PersonalData, PersonalFields};
use crate::event::{NewEvent, RecordedEvent};

/// A payload of a registered type, parsed, with its subject.
struct Parsed<'r> {
    index: usize,
    fields: &'r PersonalFields,
    subject: String,
    payload: Value,
}

fn parse<'r>(
    data: &'r PersonalData,
    items: impl Iterator<Item = (usize, &'r str, &'r RawValue)>,
) -> Result<Vec<Parsed<'r>>, PersonalError> {
    let mut parsed = Vec::new();
    for (index, event_type, raw) in items {
        let Some(fields) = data.fields_of(event_type) else { continue };
        let missing =
            || PersonalError::MissingSubject { event_type: event_type.to_owned(), pointer: "(payload)".to_owned() };
        let payload: Value = serde_json::from_str(raw.get()).map_err(|_| missing())?;
        let subject = fields.subject_of(&payload)?;
        parsed.push(Parsed { index, fields, subject, payload });
    }
    Ok(parsed)
}

fn subjects(parsed: &[Parsed<'_>]) -> Vec<String> {
    let set: BTreeSet<&String> = parsed.iter().map(|p| &p.subject).collect();
    set.into_iter().cloned().collect()
}

fn raw(payload: &Value) -> Box<RawValue> {
    // A `Value` always serialises.
    to_raw_value(payload).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Seals the registered personal fields of `events` in place, with their subjects' keys
/// (made for subjects that have none). Nothing is changed when it fails: a payload
/// without its subject id or a required field, or a forgotten subject.
pub async fn seal_events<K: PersonalKeys + ?Sized>(
    data: &PersonalData,
    keys: &K,
    events: &mut [NewEvent],
) -> Result<(), PersonalError> {
    let items = events.iter().enumerate().map(|(i, e)| (i, e.event_type.as_str(), &*e.payload));
    let mut parsed = parse(data, items)?;
    // An event with no personal value present (all optional and absent) needs no key.
    let mut holding = Vec::with_capacity(parsed.len());
    for mut p in parsed {
        if !p.fields.present(&mut p.payload)?.is_empty() {
            holding.push(p);
        }
    }
    parsed = holding;
    if parsed.is_empty() {
        return Ok(());
    }
    let keys = keys.keys_for_append(&subjects(&parsed)).await?;
    let mut sealed = Vec::with_capacity(parsed.len());
    for mut p in parsed {
        let key = keys.get(&p.subject).ok_or_else(|| PersonalError::UnknownKey { subject: p.subject.clone() })?;
        for (pointer, slot) in p.fields.present(&mut p.payload)? {
            *slot = seal(key, &p.subject, pointer, slot);
        }
        sealed.push((p.index, raw(&p.payload)));
    }
    for (index, payload) in sealed {
        events[index].payload = payload;
    }
    Ok(())
}

/// Reveals the registered personal fields of stored `events` in place: each sealed value
/// opened with its subject's key, or replaced by the placeholder when the subject was
/// forgotten. Nothing is changed when it fails: a payload without its subject id or a
/// required field, a value that is not sealed, a sealed value that does not open, a
/// subject with no key. `events` may be events or mutable references to them.
pub async fn reveal_events<K, E>(data: &PersonalData, keys: &K, events: &mut [E]) -> Result<(), PersonalError>
where
    K: PersonalKeys + ?Sized,
    E: BorrowMut<RecordedEvent>,
{
    let items = events.iter().enumerate().map(|(i, e)| {
        let e: &RecordedEvent = e.borrow();
        (i, e.event_type.as_str(), &*e.payload)
    });
    let mut parsed = parse(data, items)?;
    parsed.retain_mut(|p| p.fields.present(&mut p.payload).map_or(true, |present| !present.is_empty()));
    if parsed.is_empty() {
        return Ok(());
    }
    let keys = keys.keys_for_read(&subjects(&parsed)).await?;
    let mut revealed = Vec::with_capacity(parsed.len());
    for mut p in parsed {
        reveal_one(data, &keys, &mut p)?;
        revealed.push((p.index, raw(&p.payload)));
    }
    for (index, payload) in revealed {
        events[index].borrow_mut().payload = payload;
    }
    Ok(())
}

fn reveal_one(data: &PersonalData, keys: &HashMap<String, KeyState>, p: &mut Parsed<'_>) -> Result<(), PersonalError> {
    let state = keys.get(&p.subject).ok_or_else(|| PersonalError::UnknownKey { subject: p.subject.clone() })?;
    let event_type = p.fields.event_type().to_owned();
    for (pointer, slot) in p.fields.present(&mut p.payload)? {
        if !is_sealed(slot) {
            return Err(PersonalError::NotSealed { event_type, pointer: pointer.to_owned() });
        }
        *slot = match state {
            KeyState::Active(key) => open(key, &p.subject, pointer, slot)?,
            KeyState::Forgotten => data.placeholder().clone(),
        };
    }
    Ok(())
}

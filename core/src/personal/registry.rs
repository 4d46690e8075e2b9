//! Which fields of which event types hold personal data, and whose data it is.

use std::collections::HashMap;

use serde_json::Value;

use super::error::PersonalError;

/// The placeholder a forgotten subject's fields read as, unless another is set.
pub const FORGOTTEN: &str = "[forgotten]";

/// The personal fields of one stored event type: a JSON pointer (RFC 6901) to the data
/// subject's id (a string left in plain text), and pointers to the fields sealed with that
/// subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalFields {
    event_type: String,
    subject: String,
    fields: Vec<(String, bool)>,
}

impl PersonalFields {
    /// The personal fields of events stored under `event_type`, whose subject id is the
    /// string at `subject_pointer` (for example `"/customer"`).
    pub fn new(event_type: impl Into<String>, subject_pointer: impl Into<String>) -> Self {
        Self { event_type: event_type.into(), subject: subject_pointer.into(), fields: Vec::new() }
    }

    /// A field every payload of the type holds: appending a payload without it fails with
    /// [`PersonalError::MissingField`]. A `null` value is left as it is.
    pub fn field(mut self, pointer: impl Into<String>) -> Self {
        self.fields.push((pointer.into(), true));
        self
    }

    /// A field a payload may lack (absent or `null`, left as it is), for example one added
    /// in a later schema version.
    pub fn optional(mut self, pointer: impl Into<String>) -> Self {
        self.fields.push((pointer.into(), false));
        self
    }

    fn check(&self) -> Result<(), PersonalError> {
        let bad = |reason| Err(PersonalError::Registration { event_type: self.event_type.clone(), reason });
        let pointer = |p: &str| p.starts_with('/');
        if !pointer(&self.subject) {
            return bad("the subject pointer must start with '/'");
        }
        if self.fields.is_empty() {
            return bad("no personal field is registered");
        }
        if self.fields.iter().any(|(p, _)| !pointer(p)) {
            return bad("a field pointer must start with '/'");
        }
        let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if self.fields.iter().any(|(p, _)| inside(&self.subject, p) || inside(p, &self.subject)) {
            return bad("the subject id cannot be (inside) a personal field");
        }
        Ok(())
    }
}

/// The registry of personal fields, by stored event type name, with the placeholder that
/// a forgotten subject's fields read as (the JSON string `"[forgotten]"` by default).
///
/// Register every stored type name that carries personal data, including old names an
/// upcaster renames: sealing and revealing work on stored payloads, before upcasting, so
/// upcasters see plain values or the placeholder, never ciphertext.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalData {
    by_type: HashMap<String, PersonalFields>,
    placeholder: Value,
}

impl PersonalData {
    /// A registry of these types; fails on a malformed pointer, a type registered twice or
    /// a type with no field.
    pub fn new(types: impl IntoIterator<Item = PersonalFields>) -> Result<Self, PersonalError> {
        let mut by_type = HashMap::new();
        for t in types {
            t.check()?;
            if by_type.contains_key(&t.event_type) {
                let reason = "the type is registered twice";
                return Err(PersonalError::Registration { event_type: t.event_type, reason });
            }
            by_type.insert(t.event_type.clone(), t);
        }
        Ok(Self { by_type, placeholder: Value::String(FORGOTTEN.to_owned()) })
    }

    /// Replaces the placeholder (for example with `null`, for fields of type `Option`).
    pub fn with_placeholder(mut self, placeholder: Value) -> Self {
        self.placeholder = placeholder;
        self
    }

    /// The placeholder a forgotten subject's fields read as.
    pub fn placeholder(&self) -> &Value {
        &self.placeholder
    }

    /// Each registered type name with its subject pointer.
    pub fn subject_pointers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_type.values().map(|t| (t.event_type.as_str(), t.subject.as_str()))
    }

    /// Whether events of this stored type carry personal data.
    pub fn covers(&self, event_type: &str) -> bool {
        self.by_type.contains_key(event_type)
    }

    pub(crate) fn fields_of(&self, event_type: &str) -> Option<&PersonalFields> {
        self.by_type.get(event_type)
    }
}

impl PersonalFields {
    /// The subject id of a payload of this type.
    pub(crate) fn subject_of(&self, payload: &Value) -> Result<String, PersonalError> {
        match payload.pointer(&self.subject).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(PersonalError::MissingSubject {
                event_type: self.event_type.clone(),
                pointer: self.subject.clone(),
            }),
        }
    }

    /// The fields present (not absent, not null) in `payload`, as mutable slots with their
    /// pointers; a required field that is absent is an error.
    pub(crate) fn present<'a>(
        &'a self,
        payload: &'a mut Value,
    ) -> Result<Vec<(&'a str, &'a mut Value)>, PersonalError> {
        for (pointer, required) in &self.fields {
            if *required && payload.pointer(pointer).is_none() {
                let pointer = pointer.clone();
                return Err(PersonalError::MissingField { event_type: self.event_type.clone(), pointer });
            }
        }
        let mut slots = Vec::new();
        // One walk of the payload hands out every slot at once (a field inside another
        // registered field is taken with the outer one).
        let mut remaining: Vec<&str> = self.fields.iter().map(|(p, _)| p.as_str()).collect();
        remaining.sort_unstable();
        remaining.dedup();
        collect_slots(payload, "", &remaining, &mut slots);
        Ok(slots)
    }

    pub(crate) fn event_type(&self) -> &str {
        &self.event_type
    }
}

/// Walks `value`, pushing every non-null value whose pointer is in `wanted`.
fn collect_slots<'a>(value: &'a mut Value, at: &str, wanted: &[&'a str], out: &mut Vec<(&'a str, &'a mut Value)>) {
    if let Some(p) = wanted.iter().find(|p| **p == at) {
        if !value.is_null() {
            out.push((p, value));
        }
        return;
    }
    let below = |key: &str| format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
    let goes_deeper = |path: &str| wanted.iter().any(|p| *p == path || p.starts_with(&format!("{path}/")));
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let path = below(key);
                if goes_deeper(&path) {
                    collect_slots(child, &path, wanted, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let path = format!("{at}/{i}");
                if goes_deeper(&path) {
                    collect_slots(child, &path, wanted, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registrations_are_checked() {
        let bad = |f: PersonalFields| matches!(PersonalData::new([f]), Err(PersonalError::Registration { .. }));
        assert!(bad(PersonalFields::new("A", "customer").field("/name")));
        assert!(bad(PersonalFields::new("A", "/customer")));
        assert!(bad(PersonalFields::new("A", "/customer").field("name")));
        assert!(bad(PersonalFields::new("A", "/c").field("/c")));
        assert!(bad(PersonalFields::new("A", "/c/id").field("/c")));
        let one = PersonalFields::new("A", "/c").field("/n");
        assert!(matches!(PersonalData::new([one.clone(), one]), Err(PersonalError::Registration { .. })));
    }

    #[test]
    fn fields_are_found_by_pointer_and_required_ones_must_be_there() {
        let f = PersonalFields::new("A", "/c").field("/name").optional("/delivery/address").optional("/x~1y");
        let mut v = json!({"c": "s", "name": "N", "delivery": {"address": "A", "zip": 1}, "x/y": 3});
        let found: Vec<String> = f.present(&mut v).unwrap().into_iter().map(|(p, _)| p.to_owned()).collect();
        assert_eq!(found, ["/delivery/address", "/name", "/x~1y"]);
        let mut v = json!({"c": "s", "name": "N", "delivery": null});
        assert_eq!(f.present(&mut v).unwrap().len(), 1);
        let mut v = json!({"c": "s"});
        assert!(matches!(f.present(&mut v), Err(PersonalError::MissingField { .. })));
        assert!(matches!(f.subject_of(&json!({"c": 5})), Err(PersonalError::MissingSubject { .. })));
        assert_eq!(f.subject_of(&json!({"c": "s"})).unwrap(), "s");
    }
}

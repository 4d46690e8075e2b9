//! Adversarial input for subjects and headers: no text can put a `.`, `*`, `>` or
//! whitespace into a subject (invalid tokens are typed errors, valid ones are used as they
//! are, so distinct inputs give distinct subjects), free text in headers round-trips and
//! never breaks a header line, and parsing any header values gives headers or a typed
//! error. `PROPTEST_CASES` raises the case count.

use async_nats::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::value::RawValue;
use tidemark::{EventId, LogPosition, Metadata, RecordedEvent, StreamId, StreamVersion};
use tidemark_nats::{
    token_problem, EventHeaders, SubjectError, SubjectScheme, HEADER_EVENT_TYPE, HEADER_MSG_ID, HEADER_POSITION,
    HEADER_RECORDED_AT, HEADER_SCHEMA_VERSION, HEADER_STREAM_ID, HEADER_STREAM_VERSION, HEADER_TENANT, HEADER_USER,
};
use tidemark_testkit::arbitrary::json_string;

fn stream_id() -> impl Strategy<Value = StreamId> {
    "[A-Za-z0-9][A-Za-z0-9_-]{0,40}".prop_map(|id| StreamId::new(id).expect("valid by construction"))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![json_string(), "[A-Za-z0-9_.*> \t-]{0,20}", ".{0,300}"]
}

fn event(stream: StreamId, event_type: String, user: Option<String>, tenant: Option<String>) -> RecordedEvent {
    let mut metadata = Metadata::new();
    metadata.user = user;
    metadata.tenant = tenant;
    RecordedEvent {
        event_id: EventId::new(),
        stream_id: stream,
        stream_version: StreamVersion(3),
        position: LogPosition::new(7, 9),
        event_type,
        schema_version: 2,
        payload: RawValue::from_string("{}".into()).expect("json"),
        metadata,
        // Headers carry microseconds, as the store does.
        recorded_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("in range"),
    }
}

fn breaks_a_subject(token: &str) -> bool {
    token.is_empty() || token.contains(['.', '*', '>']) || token.chars().any(char::is_whitespace)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A subject is built only from valid tokens, each exactly the input it came from.
    #[test]
    fn subjects_never_carry_injected_tokens(stream in stream_id(), event_type in text(), version in any::<u32>()) {
        let scheme = SubjectScheme::new("app.events", 8).expect("valid");
        match scheme.subject(&stream, &event_type, version) {
            Ok(subject) => {
                let tokens: Vec<&str> = subject.split('.').collect();
                prop_assert_eq!(tokens.len(), 6, "{}", subject);
                prop_assert!(!tokens.iter().any(|t| breaks_a_subject(t)), "{}", subject);
                let partition = scheme.partition_of(&stream).to_string();
                let version = format!("v{version}");
                let expected = ["app", "events", partition.as_str(), stream.category(), event_type.as_str(), version.as_str()];
                prop_assert_eq!(tokens, expected.to_vec());
            }
            Err(SubjectError::InvalidToken { what, value, .. }) => {
                prop_assert_eq!((what, value.as_str()), ("event type", event_type.as_str()));
                prop_assert!(token_problem(&event_type).is_some());
            }
            Err(SubjectError::InvalidSchemaVersion) => prop_assert_eq!(version, 0),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// Prefixes and filters reject every token that would change a subject's shape.
    #[test]
    fn prefixes_and_filters_reject_breaking_tokens(token in text()) {
        let scheme = SubjectScheme::new("app", 4).expect("valid");
        let valid = token_problem(&token).is_none();
        prop_assert!(!valid || !breaks_a_subject(&token));
        prop_assert_eq!(scheme.category_filter(&token).is_ok(), valid);
        prop_assert_eq!(scheme.event_type_filter(&token, 1).is_ok(), valid);
        prop_assert_eq!(SubjectScheme::new(token.clone(), 1).is_ok(), valid || prefix_of_valid_tokens(&token));
    }

    /// Free text (user, tenant) survives the headers unchanged, distinct texts give
    /// distinct header values, and no value can end a header line or be trimmed.
    #[test]
    fn header_text_round_trips_and_stays_on_its_line(stream in stream_id(), user in text(), tenant in text(), other in text()) {
        let event = event(stream, "OrderPlaced".into(), Some(user.clone()), Some(tenant));
        let headers = EventHeaders::of(&event);
        let map = headers.to_header_map();
        let parsed = EventHeaders::parse(Some(&map)).expect("the relay's own headers parse");
        prop_assert_eq!(&parsed, &headers);
        for name in [HEADER_USER, HEADER_TENANT] {
            let value = map.get(name).expect("present").as_str();
            prop_assert!(!value.contains(['\r', '\n']) && value.trim() == value, "{value:?}");
        }
        let again = EventHeaders::of(&self::event(event.stream_id.clone(), "OrderPlaced".into(), Some(other.clone()), None));
        let (a, b) = (map.get(HEADER_USER).map(|v| v.as_str().to_owned()), again.to_header_map().get(HEADER_USER).map(|v| v.as_str().to_owned()));
        prop_assert_eq!(a == b, user == other);
    }

    /// Any header values, valid or not, parse into headers or a typed error naming a header.
    #[test]
    fn any_header_values_parse_or_fail_typed(values in prop::collection::vec(prop::option::of(text()), 9)) {
        let names = [HEADER_MSG_ID, HEADER_STREAM_ID, HEADER_STREAM_VERSION, HEADER_EVENT_TYPE, HEADER_SCHEMA_VERSION,
            HEADER_POSITION, HEADER_RECORDED_AT, HEADER_USER, HEADER_TENANT];
        let mut map = HeaderMap::new();
        for (name, value) in names.iter().zip(&values) {
            if let Some(value) = value.as_deref().and_then(|v| v.parse::<HeaderValue>().ok()) {
                map.insert(*name, value);
            }
        }
        match EventHeaders::parse(Some(&map)) {
            Ok(headers) => prop_assert!(token_problem(&headers.event_type).is_none()),
            Err(e) => prop_assert!(names.contains(&e.header()) || e.header().starts_with("Tidemark-")),
        }
    }
}

/// Whether `text` is dot-separated valid tokens (a valid multi-token prefix).
fn prefix_of_valid_tokens(text: &str) -> bool {
    !text.is_empty() && text.split('.').all(|t| token_problem(t).is_none())
}

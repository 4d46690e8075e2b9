//! Proptest strategies for adversarial input: arbitrary JSON values and text that is
//! mostly, but not always, JSON.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Any JSON value, nested up to four levels: nulls, booleans, integers at the edges of
/// `i64` and `u64`, floats, strings with control characters and non-ASCII text, arrays,
/// and objects whose keys are sometimes the field names a decoder looks for.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Text sent where JSON is expected: valid JSON most of the time, otherwise anything
/// (truncated JSON, random characters, an empty string).
pub fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_value().prop_map(|v| v.to_string()),
        1 => (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| truncated(&v.to_string(), cut)),
        1 => ".{0,64}",
    ]
}

/// `text` cut at a character boundary chosen by `cut` (never the whole text).
fn truncated(text: &str, cut: prop::sample::Index) -> String {
    let ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    ends.get(cut.index(ends.len().max(1))).map_or_else(String::new, |end| text[..*end].to_owned())
}

/// A string that may hold quotes, backslashes, control characters, NUL and non-ASCII.
pub fn json_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_.-]{0,12}", "\\PC{0,16}", ".{0,16}", "[\\x00-\\x1f\"\\\\%]{0,8}",]
}

/// An object key: usually a field name that decoders look for, sometimes anything.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => json_string(),
    ]
}

/// Field names of the payloads and bodies under test, so arbitrary objects often come
/// close to a valid shape.
const FIELD_NAMES: &[&str] = &[
    "n",
    "name",
    "cents",
    "amount",
    "lines",
    "price",
    "product",
    "quantity",
    "unit_price_minor",
    "currency",
    "customer",
    "payment_id",
    "amount_minor",
    "tracking",
    "reason",
    "line",
    "data",
    "text",
    "version",
];

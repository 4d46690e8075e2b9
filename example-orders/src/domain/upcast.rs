//! The order events' codec, with the upcaster from the first release's `OrderPlaced`.

use serde_json::{Map, Value};
use tidemark::{EventCodec, RegistryError};

use super::currency::Currency;
use super::decimal::decimal_to_minor;
use super::events::OrderEvent;

/// The currency every order of the first release was in: v1 had no currency field.
const V1_CURRENCY: Currency = Currency::EUR;
/// Digits after the decimal point in v1 prices (euro cents).
const V1_FRACTION_DIGITS: u32 = 2;

/// The codec for [`OrderEvent`]s: current events as they are, and `OrderPlaced` v1
/// (decimal-string `price` per line, no currency) upcast to v2 (`unit_price_minor`
/// per line, `currency` `"EUR"`). Stored events are never rewritten: the upcaster runs
/// on every read.
///
/// ```
/// use example_orders::domain::codec;
/// let codec = codec()?;
/// assert!(codec.covers("OrderPlaced", 1) && codec.covers("OrderPlaced", 2));
/// # Ok::<(), tidemark::RegistryError>(())
/// ```
pub fn codec() -> Result<EventCodec<OrderEvent>, RegistryError> {
    EventCodec::builder().upcast("OrderPlaced", 1, placed_v1_to_v2).build()
}

/// `OrderPlaced` v1 → v2: each line's `price` (a decimal string such as `"12.50"`)
/// becomes `unit_price_minor` (`1250`); `currency` is set to `"EUR"` when missing.
///
/// Fails, with the line number in the message, on a payload that is not an object with
/// a `lines` array of objects, and on a missing or malformed price.
pub fn placed_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let object = payload.as_object_mut().ok_or("an OrderPlaced v1 payload is a JSON object")?;
    let lines = object.get_mut("lines").and_then(Value::as_array_mut).ok_or("OrderPlaced v1 has no \"lines\" array")?;
    for (index, line) in lines.iter_mut().enumerate() {
        let line = line.as_object_mut().ok_or_else(|| format!("line {}: not a JSON object", index + 1))?;
        price_to_minor(line).map_err(|reason| format!("line {}: {reason}", index + 1))?;
    }
    object.entry("currency").or_insert_with(|| V1_CURRENCY.as_str().into());
    Ok(payload)
}

/// Replaces a v1 line's `price` by `unit_price_minor`.
fn price_to_minor(line: &mut Map<String, Value>) -> Result<(), String> {
    let price = line.remove("price").ok_or("no \"price\"")?;
    let text = price.as_str().ok_or_else(|| format!("the price {price} is not a decimal string"))?;
    let minor = decimal_to_minor(text, V1_FRACTION_DIGITS).map_err(|e| e.to_string())?;
    line.insert("unit_price_minor".to_owned(), minor.into());
    Ok(())
}

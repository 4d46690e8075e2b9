//! The order events' personal data: the delivery contact of `OrderPlaced`, whose data
//! subject is the customer.

use tidemark::{PersonalData, PersonalError, PersonalFields};

/// The registry of the orders' personal fields: `OrderPlaced`'s `delivery.name` and
/// `delivery.address` (both optional: events written before delivery existed, or placed
/// without one, hold none), sealed with the key of the subject at `customer`. A forgotten
/// customer's fields read as `"[forgotten]"`.
///
/// ```
/// let data = example_orders::domain::personal_data()?;
/// assert!(data.covers("OrderPlaced") && !data.covers("OrderPaid"));
/// # Ok::<(), tidemark::PersonalError>(())
/// ```
pub fn personal_data() -> Result<PersonalData, PersonalError> {
    let placed =
        PersonalFields::new("OrderPlaced", "/customer").optional("/delivery/name").optional("/delivery/address");
    PersonalData::new([placed])
}

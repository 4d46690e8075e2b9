//! Crypto-shredding: personal fields of events sealed with a key per data subject, so
//! that destroying the key erases the data from an append-only log.

mod cipher;
mod error;
mod keys;
mod registry;
mod seal;
mod store;

pub use cipher::{SubjectKey, SEALED_PREFIX};
pub use error::PersonalError;
pub use keys::{InMemoryPersonalKeys, KeyState, PersonalKeys};
pub use registry::{PersonalData, PersonalFields, FORGOTTEN};
pub use seal::{reveal_events, seal_events};
pub use store::ShreddingStore;

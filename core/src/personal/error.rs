//! What can go wrong when personal data is sealed or revealed.

use crate::error::BackendError;

/// Why a personal field could not be sealed (on append) or revealed (on read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersonalError {
    /// The payload has no text at the pointer that names the data subject.
    #[error("event {event_type:?} has no subject id (a non-empty string) at {pointer:?}")]
    MissingSubject {
        /// The stored type name.
        event_type: String,
        /// The registered subject pointer.
        pointer: String,
    },
    /// A registered personal field is absent from a payload being appended.
    #[error("event {event_type:?} has no personal field at {pointer:?}")]
    MissingField {
        /// The stored type name.
        event_type: String,
        /// The registered field pointer.
        pointer: String,
    },
    /// A stored personal field is not a sealed value (it was written in plain text, or changed).
    #[error("event {event_type:?} holds no sealed value at {pointer:?}")]
    NotSealed {
        /// The stored type name.
        event_type: String,
        /// The registered field pointer.
        pointer: String,
    },
    /// A sealed value does not open with its subject's key (damaged, or moved from
    /// another field or subject).
    #[error("the sealed value at {pointer:?} for subject {subject:?} does not open with its key")]
    Corrupt {
        /// The data subject.
        subject: String,
        /// The field pointer.
        pointer: String,
    },
    /// No key was ever made for a subject whose sealed values are being read.
    #[error("no key exists for subject {subject:?}")]
    UnknownKey {
        /// The data subject.
        subject: String,
    },
    /// The subject was forgotten: nothing more is recorded under its id.
    #[error("subject {subject:?} was forgotten; no new personal data is recorded for it")]
    Forgotten {
        /// The data subject.
        subject: String,
    },
    /// A stored key is not a 256-bit key.
    #[error("the stored key of subject {subject:?} is {len} bytes long, not 32")]
    BadKey {
        /// The data subject.
        subject: String,
        /// The stored key's length in bytes.
        len: usize,
    },
    /// A registration is wrong (found when the registry is built).
    #[error("invalid registration for {event_type:?}: {reason}")]
    Registration {
        /// The event type registered.
        event_type: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key storage failed.
    #[error(transparent)]
    Keys(#[from] BackendError),
}

//! Sealing one JSON value with a subject's key: AES-256-GCM, a random 96-bit nonce per
//! value, the subject and the field pointer bound in as associated data (a sealed value
//! moved to another field or subject does not open).

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde_json::Value;

use super::error::PersonalError;

/// The prefix of every sealed value: a JSON string `"tmk:pd1:" + hex(nonce ‖ ciphertext)`.
pub const SEALED_PREFIX: &str = "tmk:pd1:";
const NONCE_LEN: usize = 12;

/// One data subject's 256-bit key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey([u8; 32]);

impl SubjectKey {
    /// A fresh random key, from the operating system's generator.
    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(OsRng).into())
    }

    /// A key from stored bytes; fails unless there are exactly 32.
    pub fn from_bytes(subject: &str, bytes: &[u8]) -> Result<Self, PersonalError> {
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| PersonalError::BadKey { subject: subject.to_owned(), len: bytes.len() })?;
        Ok(Self(key))
    }

    /// The key's bytes, to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

fn aad(subject: &str, pointer: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(subject.len() + pointer.len() + 1);
    aad.extend_from_slice(subject.as_bytes());
    aad.push(0);
    aad.extend_from_slice(pointer.as_bytes());
    aad
}

/// Seals `value` (its JSON text) for `subject` at `pointer`.
pub(crate) fn seal(key: &SubjectKey, subject: &str, pointer: &str, value: &Value) -> Value {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let msg = value.to_string();
    let aad = aad(subject, pointer);
    // Encryption fails only for a message over 64 GiB, which a JSON field of an event is not.
    let sealed = key.cipher().encrypt(&nonce, Payload { msg: msg.as_bytes(), aad: &aad }).unwrap_or_default();
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    Value::String(format!("{SEALED_PREFIX}{}", hex::encode(bytes)))
}

/// Whether a stored value is a sealed one.
pub(crate) fn is_sealed(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(SEALED_PREFIX))
}

/// Opens a sealed value for `subject` at `pointer`.
pub(crate) fn open(key: &SubjectKey, subject: &str, pointer: &str, sealed: &Value) -> Result<Value, PersonalError> {
    let corrupt = || PersonalError::Corrupt { subject: subject.to_owned(), pointer: pointer.to_owned() };
    let text = sealed.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)).ok_or_else(corrupt)?;
    let bytes = hex::decode(text).map_err(|_| corrupt())?;
    if bytes.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let aad = aad(subject, pointer);
    let plain = key
        .cipher()
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
        .map_err(|_| corrupt())?;
    serde_json::from_slice(&plain).map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_subject_and_pointer() {
        let key = SubjectKey::generate();
        let value = json!({"name": "Ada Lovelace"});
        let sealed = seal(&key, "c-1", "/delivery", &value);
        assert!(is_sealed(&sealed));
        assert!(!sealed.to_string().contains("Ada"));
        assert_eq!(open(&key, "c-1", "/delivery", &sealed).unwrap(), value);
        assert!(matches!(open(&key, "c-2", "/delivery", &sealed), Err(PersonalError::Corrupt { .. })));
        assert!(matches!(open(&key, "c-1", "/other", &sealed), Err(PersonalError::Corrupt { .. })));
        let other = SubjectKey::generate();
        assert!(matches!(open(&other, "c-1", "/delivery", &sealed), Err(PersonalError::Corrupt { .. })));
    }

    #[test]
    fn two_seals_of_one_value_differ_and_damage_is_caught() {
        let key = SubjectKey::generate();
        let a = seal(&key, "s", "/p", &json!("x"));
        assert_ne!(a, seal(&key, "s", "/p", &json!("x")));
        let mut text = a.as_str().unwrap().to_owned();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(open(&key, "s", "/p", &Value::String(text)), Err(PersonalError::Corrupt { .. })));
        for bad in ["tmk:pd1:zz", "tmk:pd1:00", "plain"] {
            assert!(open(&key, "s", "/p", &json!(bad)).is_err());
        }
        assert!(matches!(SubjectKey::from_bytes("s", &[0; 5]), Err(PersonalError::BadKey { len: 5, .. })));
    }
}

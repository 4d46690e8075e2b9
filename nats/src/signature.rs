//! Signed messages. The relay adds to every message an HMAC-SHA256 of its tidemark
//! headers and its payload, keyed with the store's message secret (see
//! `PgEventStore::message_secret`). A consumer holding the same key knows a message whose
//! signature verifies was published, as it is, by a process that could read the store's
//! schema, and may take its event in without asking the store whether it holds it.

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tidemark_postgres::PgEventStore;

use crate::headers::{known_values, Headers};

/// The signature of a message: lowercase hex of an HMAC-SHA256 (64 characters).
pub const HEADER_SIGNATURE: &str = "Tidemark-Signature";

/// [`HEADER_SIGNATURE`] as a header name made once, not parsed for every message.
const SIGNATURE_NAME: HeaderName = HeaderName::from_static(HEADER_SIGNATURE);

/// `bytes` in lowercase hex.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)]);
        text.push(DIGITS[usize::from(b & 0x0f)]);
    }
    String::from_utf8(text).unwrap_or_default()
}

/// What a signature covers starts with this, so that a MAC made for another purpose with
/// the same secret never passes for a message's.
const DOMAIN: &[u8] = b"tidemark message signature v1\0";

/// The shortest secret a key is made from.
pub const MIN_SECRET_LEN: usize = 32;

/// Why a [`MessageKey`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("a message secret needs at least {MIN_SECRET_LEN} bytes, this one has {len}")]
    TooShort {
        /// The secret's length in bytes.
        len: usize,
    },
    /// Reading the secret from the store failed.
    #[error("reading the message secret: {0}")]
    Store(#[source] tidemark::Error),
}

impl KeyError {
    /// Whether trying again may succeed (the store failed for a passing reason).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::TooShort { .. } => false,
            Self::Store(e) => e.is_retryable(),
        }
    }
}

/// What a message's signature says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signature {
    /// The signature verifies: the headers and the payload are as the signer sent them.
    Valid,
    /// The message has no signature.
    Missing,
    /// The message has a signature that does not verify: it was changed, or signed with
    /// another key.
    Invalid,
}

/// The key messages are signed and verified with. Its `Debug` output shows no secret.
///
/// ```no_run
/// # async fn demo(store: tidemark_postgres::PgEventStore, message: async_nats::Message)
/// #     -> Result<(), tidemark_nats::KeyError> {
/// use tidemark_nats::{MessageKey, Signature};
/// let key = MessageKey::load(&store).await?;
/// if key.verify(message.headers.as_ref(), &message.payload) == Signature::Valid {
///     // published by this store's relay, unchanged
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MessageKey {
    /// The keyed state, cloned for each message (the key's pads are hashed once).
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

impl MessageKey {
    /// A key made from `secret`, which must have at least [`MIN_SECRET_LEN`] bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort { len: secret.len() });
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| KeyError::TooShort { len: secret.len() })?;
        Ok(Self { mac })
    }

    /// The key of `store`: the secret its migrations made.
    pub async fn load(store: &PgEventStore) -> Result<Self, KeyError> {
        let secret = store.message_secret().await.map_err(KeyError::Store)?;
        Self::from_secret(&secret)
    }

    /// Adds the signature of `headers` and `payload` to `headers`, replacing any there.
    pub fn sign(&self, headers: &mut HeaderMap, payload: &[u8]) {
        let tag = self.mac(headers, payload).finalize().into_bytes();
        // Lowercase hex holds no CR or LF, the one thing a header value may not hold.
        headers.insert(SIGNATURE_NAME, HeaderValue::from(lower_hex(&tag)));
    }

    /// Checks the signature a message carries (in constant time).
    pub fn verify(&self, headers: Option<&HeaderMap>, payload: &[u8]) -> Signature {
        let Some(headers) = headers else { return Signature::Missing };
        self.verify_read(&Headers::read(headers), payload)
    }

    /// [`verify`](Self::verify) on the headers of a message read already.
    pub(crate) fn verify_read(&self, headers: &Headers<'_>, payload: &[u8]) -> Signature {
        let Some(signature) = headers.signature else { return Signature::Missing };
        let mut tag = [0_u8; 32];
        if hex::decode_to_slice(signature, &mut tag).is_err() {
            return Signature::Invalid;
        }
        match self.mac_of(&headers.known, payload).verify_slice(&tag) {
            Ok(()) => Signature::Valid,
            Err(_) => Signature::Invalid,
        }
    }

    /// The MAC of what a signature covers: the first value of each tidemark header (and
    /// `Nats-Msg-Id`), in a fixed order, each marked present or absent and prefixed with
    /// its length, then the payload, prefixed with its length. Every field has one
    /// encoding, so no two different messages share their input.
    fn mac(&self, headers: &HeaderMap, payload: &[u8]) -> Hmac<Sha256> {
        self.mac_of(&known_values(headers), payload)
    }

    /// [`mac`](Self::mac) of the known headers' values, read already.
    fn mac_of(&self, known: &[Option<&str>], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        for value in known {
            match value {
                None => mac.update(&[0]),
                Some(value) => {
                    mac.update(&[1]);
                    mac.update(&(value.len() as u64).to_be_bytes());
                    mac.update(value.as_bytes());
                }
            }
        }
        mac.update(&(payload.len() as u64).to_be_bytes());
        mac.update(payload);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::{EventHeaders, HEADER_STREAM_VERSION, HEADER_USER};
    use chrono::Utc;
    use tidemark::{EventId, LogPosition, RecordedEvent, StreamId, StreamVersion};

    fn key(byte: u8) -> MessageKey {
        MessageKey::from_secret(&[byte; 32]).expect("a 32-byte secret")
    }

    fn headers() -> HeaderMap {
        let event = RecordedEvent {
            event_id: EventId::new(),
            stream_id: StreamId::new("order-1").expect("stream id"),
            stream_version: StreamVersion(3),
            position: LogPosition::new(10, 7),
            event_type: "Placed".to_owned(),
            schema_version: 1,
            payload: serde_json::value::RawValue::from_string("{}".to_owned()).expect("json"),
            metadata: tidemark::Metadata::new(),
            recorded_at: Utc::now(),
        };
        EventHeaders::of(&event).to_header_map()
    }

    #[test]
    fn a_signed_message_verifies_with_its_key_only() {
        let mut map = headers();
        key(1).sign(&mut map, b"{\"a\":1}");
        assert_eq!(key(1).verify(Some(&map), b"{\"a\":1}"), Signature::Valid);
        assert_eq!(key(2).verify(Some(&map), b"{\"a\":1}"), Signature::Invalid);
    }

    #[test]
    fn a_changed_payload_or_header_fails_verification() {
        let mut map = headers();
        key(1).sign(&mut map, b"{\"a\":1}");
        assert_eq!(key(1).verify(Some(&map), b"{\"a\":2}"), Signature::Invalid);
        let mut changed = map.clone();
        changed.insert(HEADER_STREAM_VERSION, "4");
        assert_eq!(key(1).verify(Some(&changed), b"{\"a\":1}"), Signature::Invalid);
        let mut added = map.clone();
        added.insert(HEADER_USER, "mallory");
        assert_eq!(key(1).verify(Some(&added), b"{\"a\":1}"), Signature::Invalid);
    }

    #[test]
    fn a_header_value_cannot_be_moved_into_the_payload() {
        // Length prefixes keep the boundary between fields where it was.
        let mut map = headers();
        map.insert(HEADER_USER, "ab");
        key(1).sign(&mut map, b"c");
        let mut moved = map.clone();
        moved.insert(HEADER_USER, "a");
        assert_eq!(key(1).verify(Some(&moved), b"bc"), Signature::Invalid);
    }

    #[test]
    fn missing_and_malformed_signatures_are_told_apart() {
        assert_eq!(key(1).verify(None, b""), Signature::Missing);
        assert_eq!(key(1).verify(Some(&headers()), b""), Signature::Missing);
        let mut map = headers();
        map.insert(HEADER_SIGNATURE, "not hex");
        assert_eq!(key(1).verify(Some(&map), b""), Signature::Invalid);
        map.insert(HEADER_SIGNATURE, "abcd");
        assert_eq!(key(1).verify(Some(&map), b""), Signature::Invalid);
    }

    #[test]
    fn signatures_are_lowercase_hex_as_the_hex_crate_writes_it() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        let unsigned = headers();
        let mut map = unsigned.clone();
        key(3).sign(&mut map, b"{}");
        let written = map.get(HEADER_SIGNATURE).map(|v| v.as_str().to_owned()).unwrap_or_default();
        let expected = hex::encode(key(3).mac(&unsigned, b"{}").finalize().into_bytes());
        assert_eq!(written, expected);
    }

    #[test]
    fn a_short_secret_is_refused_and_the_key_is_not_printed() {
        assert!(matches!(MessageKey::from_secret(&[7; 31]), Err(KeyError::TooShort { len: 31 })));
        assert_eq!(format!("{:?}", key(9)), "MessageKey(..)");
    }
}

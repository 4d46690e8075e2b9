//! The ledger: events with a batch marker (so a partial append would show), an injectable
//! poison event, and a projection that keeps, per stream, every version in the order it was
//! applied. Lost, doubled or reordered applies are therefore visible in the read model itself
//! rather than inferred from a final balance.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tidemark::{Envelope, EventCodec, NewEvent};
use tidemark_projections::{ApplyError, DocumentTx, Projection, ReadModels};
use uuid::Uuid;

/// The projection's name.
pub const LEDGER: &str = "ledger";
/// The collection of per-stream records.
pub const APPLIED: &str = "applied";

/// Money credited; `batch` and `of` name the append it belongs to and how many events it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credited {
    /// The amount.
    pub amount: i64,
    /// The append (one command's events) this event was part of.
    pub batch: Uuid,
    /// How many events that append had.
    pub of: u32,
}

/// An event the projection always fails on: injected to prove poison handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poisoned {
    /// The append this event was part of.
    pub batch: Uuid,
    /// How many events that append had.
    pub of: u32,
}

tidemark::domain_events! {
    /// The events of a ledger stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum LedgerEvent {
        /// An amount added to the stream's total.
        Credited(Credited) = ("Credited", 1),
        /// An event the ledger projection refuses to apply.
        Poisoned(Poisoned) = ("Poisoned", 1),
    }
}

/// What the read model holds per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Every stream version applied, in the order the projection saw them.
    pub versions: Vec<u64>,
    /// The sum of the credited amounts.
    pub balance: i64,
}

/// The events of one append of `count` credits (`count` ≥ 1).
pub fn credits(count: u32, amount: i64) -> Vec<NewEvent> {
    let batch = Uuid::new_v4();
    (0..count).map(|i| event("Credited", &Credited { amount: amount + i64::from(i), batch, of: count })).collect()
}

/// An append of one poison event.
pub fn poison() -> Vec<NewEvent> {
    vec![event("Poisoned", &Poisoned { batch: Uuid::new_v4(), of: 1 })]
}

fn event<T: Serialize>(event_type: &str, body: &T) -> NewEvent {
    // Serializing these plain structs cannot fail; an empty object would be caught by the checks.
    let json = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let payload = RawValue::from_string(json).unwrap_or_else(|_| RawValue::NULL.to_owned());
    NewEvent::new(event_type, 1, payload)
}

/// Records each applied version; fails on [`Poisoned`].
#[derive(Debug)]
pub struct LedgerProjection {
    codec: EventCodec<LedgerEvent>,
}

impl LedgerProjection {
    /// The projection.
    ///
    /// # Errors
    ///
    /// The codec's registry error (none for these two types).
    pub fn new() -> Result<Self, tidemark::RegistryError> {
        Ok(Self { codec: EventCodec::without_upcasters()? })
    }
}

impl<R> Projection<R> for LedgerProjection
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        LEDGER
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    async fn forget_stream(&self, tx: &mut R::Tx, stream: &tidemark::StreamId) -> Result<(), ApplyError> {
        tx.delete(APPLIED, stream.as_str()).await
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let amount = match &event.event {
            LedgerEvent::Credited(credited) => credited.amount,
            LedgerEvent::Poisoned(_) => return Err("an injected poison event".into()),
        };
        let key = event.stream_id.as_str();
        let mut applied: Applied = tx.get_as(APPLIED, key).await?.unwrap_or_default();
        applied.versions.push(event.stream_version.0);
        applied.balance += amount;
        tx.put_as(APPLIED, key, &applied).await
    }
}

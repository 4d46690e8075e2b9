//! The poison scenarios' projection and traffic, shared by the in-process and the
//! PostgreSQL-feed tests: a tally that fails on one amount while it is broken, and keeps,
//! in the same transaction as each tally, the stream versions it applied in order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidemark::{AppendOutcome, AppendRequest, Envelope, EventCodec, EventStore, ExpectedVersion, StreamVersion};
use tidemark_projections::{
    ApplyError, DocumentReader, DocumentTx, PoisonPolicy, Projection, ReadModels, RunnerConfig,
};

use super::{events, stream, LedgerEvent, TallyProjection};

/// The amount the projection fails on while it is broken.
pub(crate) const UNLUCKY: i64 = 13;

/// The tally projection, failing on any event with amount [`UNLUCKY`] while broken. Beside
/// each tally it keeps the list of stream versions it applied (collection `order-<name>`).
pub(crate) struct Fragile {
    pub inner: TallyProjection,
    broken: AtomicBool,
}

impl Fragile {
    pub(crate) fn new(name: &str, broken: bool) -> Self {
        Self { inner: TallyProjection::new(name), broken: AtomicBool::new(broken) }
    }

    /// The fix: from now on the unlucky amount applies like any other.
    pub(crate) fn fix(&self) {
        self.broken.store(false, Ordering::SeqCst);
    }

    pub(crate) fn order_collection(&self) -> String {
        format!("order-{}", self.inner.name)
    }
}

impl<R> Projection<R> for Fragile
where
    R: ReadModels,
    R::Tx: DocumentTx,
{
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        Projection::<R>::name(&self.inner)
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        Projection::<R>::codec(&self.inner)
    }

    async fn forget_stream(&self, tx: &mut R::Tx, stream: &tidemark::StreamId) -> Result<(), ApplyError> {
        tx.delete(&self.order_collection(), stream.as_str()).await?;
        Projection::<R>::forget_stream(&self.inner, tx, stream).await
    }

    async fn apply(&self, tx: &mut R::Tx, event: &Envelope<LedgerEvent>) -> Result<(), ApplyError> {
        let amount = match &event.event {
            LedgerEvent::Deposited(d) => d.amount,
            LedgerEvent::Withdrawn(w) => w.amount,
        };
        if amount == UNLUCKY && self.broken.load(Ordering::SeqCst) {
            return Err("unlucky amount".into());
        }
        let (collection, key) = (self.order_collection(), event.stream_id.as_str());
        let mut order: Vec<u64> = tx.get_as(&collection, key).await?.unwrap_or_default();
        order.push(event.stream_version.0);
        tx.put_as(&collection, key, &order).await?;
        Projection::<R>::apply(&self.inner, tx, event).await
    }
}

/// The stream versions the projection applied, per stream, in the order applied.
pub(crate) async fn orders<D: DocumentReader>(documents: &D, projection: &Fragile) -> BTreeMap<String, Vec<u64>> {
    let all = documents
        .documents(&projection.inner.name, &projection.order_collection(), "", 1_000_000)
        .await
        .expect("read documents");
    all.into_iter().map(|(k, v)| (k, serde_json::from_value(v).expect("a list of versions"))).collect()
}

/// A deposit of `amount`.
pub(crate) fn deposit(amount: i64) -> tidemark::NewEvent {
    let payload = serde_json::value::RawValue::from_string(format!(r#"{{"amount":{amount}}}"#)).expect("json");
    tidemark::NewEvent::new("Deposited", 1, payload)
}

/// Small batches, quick retries, the poison policy after three attempts.
pub(crate) fn config(policy: PoisonPolicy) -> RunnerConfig {
    RunnerConfig::default().batch_size(50).backoff(Duration::from_millis(1), Duration::from_millis(5)).poison(policy, 3)
}

/// The sick stream of [`traffic`].
pub(crate) const SICK: usize = 99;

/// Ten healthy streams of 5 events, and stream [`SICK`]: 2 events, the poison (version 3),
/// 3 more (a withdrawal, a `Noted`, a deposit). The last outcome of each stream.
pub(crate) async fn traffic<S: EventStore + Clone + 'static>(store: &S) -> Vec<AppendOutcome> {
    let mut outcomes = super::append_rounds(store, 10, 1, 5).await;
    let sick = stream(SICK);
    let first = AppendRequest::new(sick.clone(), ExpectedVersion::NoStream, events(SICK, 0, 2));
    store.append(first).await.expect("append");
    store
        .append(AppendRequest::new(sick.clone(), ExpectedVersion::Exact(StreamVersion(2)), vec![deposit(UNLUCKY)]))
        .await
        .expect("append");
    let rest = AppendRequest::new(sick, ExpectedVersion::Exact(StreamVersion(3)), events(SICK, 3, 3));
    outcomes.push(store.append(rest).await.expect("append"));
    outcomes
}

//! One batch as a state machine: idle → begun → applied → committed.
//!
//! - **Idle**: no transaction yet. Its check against the store may be made ahead
//!   ([`Worker::check_ahead`]), while the batch before it is applied.
//! - **Begun**: its transaction is open and holds the partition's lock, nothing written
//!   ([`Worker::begin`], early, while the batch is still awaited).
//! - **Applied**: its events are written in the open transaction ([`Worker::apply`]).
//! - **Committed** ([`Worker::commit`]); a backend that commits as it checks
//!   ([`BatchOptimisations::commit_if_seen`]) takes an applied-first batch there at once.
//!
//! A failure on the way drops the transaction, which discards its writes, and leaves the
//! batch idle, to be applied again from the start.

use tidemark::EventStore;

use super::{BatchReport, Worker};
use crate::error::{ProjectionError, Result};
use crate::feed::{FeedCursor, Incoming};
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::resolve::Resolved;

/// A batch checked against the store, ready for its transaction.
#[derive(Debug)]
pub(crate) struct Checked {
    pub resolved: Resolved,
    pub report: BatchReport,
}

/// Where a batch stands.
#[derive(Debug, Default)]
enum Phase<T> {
    #[default]
    Idle,
    /// `owned`: the transaction came from `begin_batch` for this batch, which ends it,
    /// and may apply the batch before its check and undo it; else it is its caller's.
    Begun {
        tx: T,
        owned: bool,
    },
    Applied {
        tx: T,
        report: BatchReport,
    },
    Committed(BatchReport),
}

/// One batch of a partition on its way through its transaction.
#[derive(Debug)]
pub(crate) struct Batch<T> {
    partition: u32,
    phase: Phase<T>,
    /// Its check against the store, when made ahead of its transaction.
    checked: Option<Result<Checked>>,
}

impl<T> Batch<T> {
    /// An idle batch of `partition`.
    pub(crate) fn idle(partition: u32) -> Self {
        Self { partition, phase: Phase::Idle, checked: None }
    }

    /// A batch applied inside `tx`, a transaction its caller began and commits (a
    /// rebuild's catch-up): it is never applied before its check.
    pub(crate) fn within(partition: u32, tx: T) -> Self {
        Self { partition, phase: Phase::Begun { tx, owned: false }, checked: None }
    }

    /// The partition of the batch.
    pub(crate) fn partition(&self) -> u32 {
        self.partition
    }

    /// The open transaction of a begun or applied batch, back to the caller.
    pub(crate) fn into_tx(self) -> Result<T> {
        match self.phase {
            Phase::Begun { tx, .. } | Phase::Applied { tx, .. } => Ok(tx),
            Phase::Idle | Phase::Committed(_) => Err(ProjectionError::Config("the batch has no open transaction")),
        }
    }
}

impl<P, R, S> Worker<P, R, S>
where
    R: BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
{
    /// Idle → begun: a batch of `partition` whose transaction is open before the batch
    /// has come (see [`BatchOptimisations::begins_early`]).
    pub(crate) async fn begin(&self, partition: u32) -> Result<Batch<R::Tx>> {
        let tx = self.read_models.begin_batch(&self.name, partition).await?;
        Ok(Batch { partition, phase: Phase::Begun { tx, owned: true }, checked: None })
    }

    /// Checks `messages` against the store (and reads what they refer to) for an idle
    /// batch, ahead of its transaction: touches no read model, so it may run while the
    /// batch before it is applied. [`apply`](Self::apply) must be given the same messages.
    pub(crate) async fn check_ahead(&self, batch: &mut Batch<R::Tx>, messages: &[Incoming]) {
        batch.checked = Some(self.check_batch(batch.partition, messages).await);
    }

    /// Idle or begun → applied (or committed, when the backend commits as it checks).
    /// `cursor` is the feed cursor of the batch's last message, recorded with it (none
    /// for events that did not come from the feed). An idle batch begins its transaction
    /// while it is checked against the store, before it locks anything, so the lock is
    /// held no longer than the read-model work.
    pub(crate) async fn apply(
        &self,
        batch: &mut Batch<R::Tx>,
        messages: &[Incoming],
        cursor: Option<FeedCursor>,
    ) -> Result<()> {
        let span = tracing::debug_span!(
            "projection_batch",
            projection = %self.name,
            partition = batch.partition,
            events = messages.len(),
        );
        crate::trace_context::link_batch(&span, messages);
        tracing::Instrument::instrument(self.apply_traced(batch, messages, cursor), span).await
    }

    async fn apply_traced(
        &self,
        batch: &mut Batch<R::Tx>,
        messages: &[Incoming],
        cursor: Option<FeedCursor>,
    ) -> Result<()> {
        if matches!(batch.phase, Phase::Applied { .. } | Phase::Committed(_)) {
            return Err(ProjectionError::Config("a batch is applied once"));
        }
        let (tx, owned, checked) = match (std::mem::take(&mut batch.phase), batch.checked.take()) {
            (Phase::Idle, Some(checked)) => {
                let checked = checked?;
                (self.read_models.begin_batch(&self.name, batch.partition).await?, true, checked)
            }
            (Phase::Idle, None) => {
                let begin = self.read_models.begin_batch(&self.name, batch.partition);
                let (checked, tx) = tokio::join!(self.check_batch(batch.partition, messages), begin);
                (tx?, true, checked?)
            }
            (Phase::Begun { tx, owned }, checked) => {
                let checked = match checked {
                    Some(checked) => checked,
                    None => self.check_batch(batch.partition, messages).await,
                };
                match checked {
                    Ok(checked) => (tx, owned, checked),
                    Err(e) => {
                        if owned {
                            // Nothing was written: the transaction ends cleanly, keeping
                            // its connection.
                            let _ = self.read_models.commit(tx).await;
                        }
                        return Err(e);
                    }
                }
            }
            (phase @ (Phase::Applied { .. } | Phase::Committed(_)), _) => {
                batch.phase = phase;
                return Err(ProjectionError::Config("a batch is applied once"));
            }
        };
        batch.phase = self.apply_in(tx, owned, batch.partition, messages, cursor, checked).await?;
        Ok(())
    }

    /// Applied → committed, returning what the batch did; begun → committed too, ending
    /// an early transaction no batch used. Committing an idle batch does nothing.
    pub(crate) async fn commit(&self, batch: &mut Batch<R::Tx>) -> Result<BatchReport> {
        let report = match std::mem::take(&mut batch.phase) {
            Phase::Idle => return Ok(BatchReport::default()),
            Phase::Begun { tx, .. } => {
                self.read_models.commit(tx).await?;
                BatchReport::default()
            }
            Phase::Applied { tx, report } => {
                self.read_models.commit(tx).await?;
                report
            }
            Phase::Committed(report) => report,
        };
        batch.phase = Phase::Committed(report);
        Ok(report)
    }

    /// Applies `messages` as one batch of `partition` and commits it.
    pub(crate) async fn apply_and_commit(
        &self,
        partition: u32,
        messages: &[Incoming],
        cursor: Option<FeedCursor>,
    ) -> Result<BatchReport> {
        let mut batch = Batch::idle(partition);
        self.apply(&mut batch, messages, cursor).await?;
        self.commit(&mut batch).await
    }

    /// Checks a batch against the store.
    async fn check_batch(&self, partition: u32, messages: &[Incoming]) -> Result<Checked> {
        let mut report = BatchReport::default();
        let resolved = self.resolve(partition, messages, &mut report).await?;
        Ok(Checked { resolved, report })
    }

    /// Applies a checked batch in `tx`: first as if it were the next versions of its
    /// streams, when the batch owns `tx` and the backend and projection allow it (see
    /// [`speculate`](Self::speculate)), else, or when that was undone, with the check
    /// first (see [`apply_checked`](Self::apply_checked)).
    async fn apply_in(
        &self,
        mut tx: R::Tx,
        owned: bool,
        partition: u32,
        messages: &[Incoming],
        cursor: Option<FeedCursor>,
        checked: Checked,
    ) -> Result<Phase<R::Tx>> {
        let Checked { mut resolved, mut report } = checked;
        let rogue = std::mem::take(&mut resolved.rogue);
        let events = resolved.events(messages);
        if owned && rogue.is_empty() {
            match self.apply_first(tx, partition, &events, cursor, report).await? {
                Ok(committed) => return Ok(Phase::Committed(committed)),
                Err((back, undone)) => (tx, report) = (back, undone),
            }
        }
        let report = self.apply_checked(&mut tx, partition, &events, cursor, rogue, report).await?;
        Ok(Phase::Applied { tx, report })
    }
}

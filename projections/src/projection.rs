//! The `Projection` trait: what a read-model builder implements.

use std::future::Future;

use tidemark::{DomainEvent, Envelope, EventCodec};

use crate::error::ApplyError;
use crate::read_models::ReadModels;

/// A read-model builder: it turns events into rows (or documents) of its own.
///
/// A projection is written against a [`ReadModels`] backend `R`: its `apply` receives the
/// backend's transaction, the same one in which the runtime records the projection's
/// progress, so a change and the checkpoint that covers it commit together or not at all.
/// Against [`PgReadModels`](crate::PgReadModels) the transaction is a sqlx transaction;
/// projections written against the [`DocumentTx`](crate::DocumentTx) API run on PostgreSQL
/// and in memory alike.
///
/// The runtime hands `apply` each event of the types the projection's codec
/// [handles](EventCodec::handles), upcast to the current schema, in stream order; a
/// committed batch holds each stream version at most once (see [`undoable`](Self::undoable)
/// for batches undone before they commit). Other events are skipped (and still counted as
/// seen).
pub trait Projection<R: ReadModels>: Send + Sync + 'static {
    /// The events this projection reads, usually an enum declared with
    /// [`domain_events!`](tidemark::domain_events).
    type Event: DomainEvent;

    /// A stable name: 1 to 64 ASCII letters, digits, `_` and `-`. It names the
    /// projection's checkpoints, consumers and locks.
    fn name(&self) -> &str;

    /// The version of the projection's code and tables. Raising it means the read model
    /// must be rebuilt; the runner refuses to apply events with a version other than the
    /// one whose set-up has run.
    fn version(&self) -> u32 {
        1
    }

    /// The codec that decodes (and upcasts) this projection's events.
    fn codec(&self) -> &EventCodec<Self::Event>;

    /// Creates the projection's tables. Runs once per projection version, inside the
    /// transaction that records the version, never at every start.
    fn setup(&self, tx: &mut R::Tx) -> impl Future<Output = Result<(), ApplyError>> + Send {
        let _ = tx;
        async { Ok(()) }
    }

    /// Deletes what this projection holds of one stream, so the stream can be rebuilt
    /// alone ([`ProjectionRunner::rebuild_stream`](crate::ProjectionRunner::rebuild_stream)).
    /// The default refuses: only the projection knows which of its rows a stream made.
    fn forget_stream(
        &self,
        tx: &mut R::Tx,
        stream: &tidemark::StreamId,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send {
        let _ = (tx, stream);
        async { Err("this projection cannot rebuild a single stream (it does not implement forget_stream)".into()) }
    }

    /// Whether everything [`apply`](Self::apply) does happens inside the batch's
    /// transaction, so that rolling the transaction back undoes it. When true (the
    /// default), the runner may apply a batch before it has read which of its stream
    /// versions the projection has seen, and check that as it records the batch: a batch
    /// found to hold a redelivery, a gap or a parked stream is undone and applied again
    /// with the check first. Nothing of an undone batch is ever committed, but `apply`
    /// may then be called more than once for a version.
    ///
    /// Return false when `apply` acts outside the transaction (sends a command, calls a
    /// service): every batch is then checked first, and `apply` is never called for a
    /// stream version whose batch has committed (only a batch that failed before its commit
    /// is applied again).
    fn undoable(&self) -> bool {
        true
    }

    /// Applies one event inside the batch's transaction.
    fn apply(
        &self,
        tx: &mut R::Tx,
        event: &Envelope<Self::Event>,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// Applies the handled events of one batch, in order, inside its transaction. The
    /// default calls [`apply`](Self::apply) for each, in a `debug` span carrying the event's
    /// id, stream, version, correlation and causation ids and `traceparent` (a child of the
    /// event's trace context when a span hook is installed); override it to write a whole batch
    /// in one statement (an `UNNEST` upsert), which is what makes a projection fast on
    /// PostgreSQL, where each statement is a round trip.
    fn apply_batch(
        &self,
        tx: &mut R::Tx,
        events: &[Envelope<Self::Event>],
    ) -> impl Future<Output = Result<(), ApplyError>> + Send {
        async move {
            for event in events {
                let span = tracing::debug_span!(
                    "apply",
                    projection = self.name(),
                    event_id = %event.event_id,
                    stream = %event.stream_id,
                    version = event.stream_version.0,
                    correlation_id = ?event.metadata.correlation_id,
                    causation_id = ?event.metadata.causation_id,
                    traceparent = tracing::field::Empty,
                );
                crate::trace_context::continue_trace(&span, &event.metadata);
                tracing::Instrument::instrument(self.apply(tx, event), span).await?;
            }
            Ok(())
        }
    }
}

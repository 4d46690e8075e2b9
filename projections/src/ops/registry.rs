//! Projections as the ops commands see them: an object-safe view of a runner.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tidemark::{EventStore, LogPosition, StreamId};

use crate::admin::ReadModelsAdmin;
use crate::error::Result;
use crate::feed::Feed;
use crate::lag::Lag;
use crate::letters::{DeadLetter, DeadLetterStatus, RogueMessage};
use crate::optimisations::BatchOptimisations;
use crate::projection::Projection;
use crate::read_models::Seen;
use crate::rebuild::{RebuildOptions, RebuildOutcome, RebuildProgress};
use crate::replay::{ReplayFrom, ReplayReport};
use crate::runner::ProjectionRunner;

/// A boxed future, for the object-safe [`ProjectionOps`].
pub type OpsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The saved state of a projection, for `projections status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProjectionState {
    /// Its name.
    pub name: String,
    /// The version of the running code.
    pub version: u32,
    /// The version its read model was built with (`None`: not built yet).
    pub built_version: Option<u32>,
    /// Per partition: its number, the highest log position applied, and events taken in.
    pub partitions: Vec<PartitionView>,
    /// Parked dead letters and parked rogue messages.
    pub parked: usize,
    /// Skipped dead letters and skipped rogue messages.
    pub skipped: usize,
    /// Of `parked`, the rogue messages: messages on the projection's subjects that were
    /// not events of the store.
    pub rogue: usize,
    /// Whether it is paused (`projections pause`).
    pub paused: bool,
}

/// One partition in [`ProjectionState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PartitionView {
    /// The partition.
    pub partition: u32,
    /// The highest log position applied (`"t/s"`).
    pub position: String,
    /// Events taken in.
    pub events: u64,
}

impl ProjectionState {
    /// The highest position applied over all partitions.
    pub fn applied_to(&self) -> Option<LogPosition> {
        self.partitions.iter().filter_map(|p| p.position.parse().ok()).max()
    }
}

/// What the ops commands can do with one projection. Implemented by every
/// [`ProjectionRunner`]; mount runners into [`Ops`](crate::Ops).
pub trait ProjectionOps: Send + Sync {
    /// The projection's name.
    fn name(&self) -> &str;
    /// Its saved state.
    fn state(&self) -> OpsFuture<'_, ProjectionState>;
    /// How far it is behind the log (see [`ProjectionRunner::lag`]).
    fn lag(&self) -> OpsFuture<'_, Lag>;
    /// What it has seen of each stream, by stream id in byte order, after `after`, at most
    /// `limit` (see [`ReadModelsAdmin::seen_streams`]).
    fn seen_streams<'a>(&'a self, after: Option<&'a StreamId>, limit: usize) -> OpsFuture<'a, Vec<(StreamId, Seen)>>;
    /// Rebuilds it from the log (see [`ProjectionRunner::rebuild`]).
    fn rebuild<'a>(
        &'a self,
        options: RebuildOptions,
        progress: &'a mut (dyn FnMut(&RebuildProgress) + Send),
    ) -> OpsFuture<'a, RebuildOutcome>;
    /// Rebuilds one stream's rows (see [`ProjectionRunner::rebuild_stream`]); returns the
    /// events applied.
    fn rebuild_stream<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64>;
    /// Pauses or resumes it (see [`ProjectionRunner::set_paused`]); whether that changed
    /// anything.
    fn set_paused(&self, paused: bool) -> OpsFuture<'_, bool>;
    /// Applies part of the log again (see [`ProjectionRunner::replay`]).
    fn replay(&self, from: ReplayFrom, batch_size: usize) -> OpsFuture<'_, ReplayReport>;
    /// Deletes its read model (see [`ProjectionRunner::reset`]).
    fn reset(&self) -> OpsFuture<'_, ()>;
    /// Its dead letters.
    fn dead_letters(&self) -> OpsFuture<'_, Vec<DeadLetter>>;
    /// Retries a parked stream.
    fn retry_parked<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64>;
    /// Skips a parked stream.
    fn skip_parked<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64>;
    /// Its rogue messages.
    fn rogue_messages(&self) -> OpsFuture<'_, Vec<RogueMessage>>;
    /// Skips parked rogue messages: the one with `key`, or all.
    fn skip_rogue<'a>(&'a self, key: Option<&'a str>) -> OpsFuture<'a, u64>;
}

impl<P, R, S, F> ProjectionOps for ProjectionRunner<P, R, S, F>
where
    R: ReadModelsAdmin + BatchOptimisations,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    fn name(&self) -> &str {
        ProjectionRunner::name(self)
    }

    fn state(&self) -> OpsFuture<'_, ProjectionState> {
        Box::pin(async move {
            let (read_models, name) = (self.read_models(), self.name());
            let built_version = {
                let mut tx = read_models.begin().await?;
                let built = read_models.set_up_version(&mut tx, name).await?;
                read_models.commit(tx).await?;
                built
            };
            let partitions = read_models.partitions(name).await?;
            let partitions = partitions
                .into_iter()
                .map(|(partition, s)| PartitionView { partition, position: s.position.to_string(), events: s.events })
                .collect();
            let letters = read_models.dead_letters(name).await?;
            let rogue = read_models.rogue_messages(name).await?;
            let paused = read_models.paused(name).await?;
            let parked_rogue = rogue.iter().filter(|m| m.status == DeadLetterStatus::Parked).count();
            let parked = letters.iter().filter(|l| l.status == DeadLetterStatus::Parked).count() + parked_rogue;
            Ok(ProjectionState {
                name: name.to_owned(),
                version: self.projection().version(),
                built_version,
                partitions,
                parked,
                skipped: letters.len() + rogue.len() - parked,
                rogue: parked_rogue,
                paused,
            })
        })
    }

    fn lag(&self) -> OpsFuture<'_, Lag> {
        Box::pin(ProjectionRunner::lag(self))
    }

    fn seen_streams<'a>(&'a self, after: Option<&'a StreamId>, limit: usize) -> OpsFuture<'a, Vec<(StreamId, Seen)>> {
        Box::pin(self.read_models().seen_streams(self.name(), after, limit))
    }

    fn rebuild<'a>(
        &'a self,
        options: RebuildOptions,
        progress: &'a mut (dyn FnMut(&RebuildProgress) + Send),
    ) -> OpsFuture<'a, RebuildOutcome> {
        Box::pin(ProjectionRunner::rebuild(self, options, progress))
    }

    fn rebuild_stream<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64> {
        Box::pin(async move { Ok(ProjectionRunner::rebuild_stream(self, stream).await?.applied) })
    }

    fn set_paused(&self, paused: bool) -> OpsFuture<'_, bool> {
        Box::pin(ProjectionRunner::set_paused(self, paused))
    }

    fn replay(&self, from: ReplayFrom, batch_size: usize) -> OpsFuture<'_, ReplayReport> {
        Box::pin(ProjectionRunner::replay(self, from, batch_size))
    }

    fn reset(&self) -> OpsFuture<'_, ()> {
        Box::pin(ProjectionRunner::reset(self))
    }

    fn dead_letters(&self) -> OpsFuture<'_, Vec<DeadLetter>> {
        Box::pin(ProjectionRunner::dead_letters(self))
    }

    fn retry_parked<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64> {
        Box::pin(ProjectionRunner::retry_parked(self, stream))
    }

    fn skip_parked<'a>(&'a self, stream: &'a StreamId) -> OpsFuture<'a, u64> {
        Box::pin(ProjectionRunner::skip_parked(self, stream))
    }

    fn rogue_messages(&self) -> OpsFuture<'_, Vec<RogueMessage>> {
        Box::pin(ProjectionRunner::rogue_messages(self))
    }

    fn skip_rogue<'a>(&'a self, key: Option<&'a str>) -> OpsFuture<'a, u64> {
        Box::pin(ProjectionRunner::skip_rogue(self, key))
    }
}

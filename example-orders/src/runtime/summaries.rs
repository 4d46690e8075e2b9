//! The order summaries' KV projection (PostgreSQL + JetStream only): it publishes each
//! order's view to a JetStream KV bucket, driven by a projection runner like the read
//! models (checkpoints, partitions shared between processes, dead letters in PostgreSQL).
//! It reads the events as stored: a delivery contact stays sealed in the bucket, so a
//! customer's `forget` leaves nothing readable there.

use tidemark_nats::{ensure_kv_bucket, KvProjection};
use tidemark_postgres::PgEventStore;
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;

use super::feed::OrdersFeed;
use super::postgres::PgDeployment;
use super::runners::{spawn, Role};
use super::tasks::Tasks;
use super::StartError;
use crate::domain::{codec, OrderEvent};
use crate::read_models::{summarise, OrderView, ORDER_SUMMARIES};

/// The runner of the order summaries' KV projection.
pub type SummaryRunner = ProjectionRunner<KvProjection<OrderEvent, OrderView>, PgReadModels, PgEventStore, OrdersFeed>;

impl PgDeployment {
    /// The runner publishing the order summaries to the bucket
    /// [`PgOptions::summary_bucket`](super::PgOptions::summary_bucket) names, which it
    /// creates when it does not exist.
    pub async fn summaries(&self) -> Result<SummaryRunner, StartError> {
        let Some(client) = self.client.clone() else { return Err(StartError::NoRelay) };
        let jetstream = async_nats::jetstream::new(client);
        let bucket = ensure_kv_bucket(&jetstream, &self.options.summary_bucket()).await?;
        let projection = KvProjection::new(ORDER_SUMMARIES, codec()?, jetstream, bucket, summarise)?;
        let (read_models, feed, config) =
            (self.read_models.clone(), self.sealed_feed().await?, RunnerConfig::default());
        Ok(ProjectionRunner::new(projection, read_models, self.store.clone(), feed, config)?)
    }

    /// Runs the order summaries' KV projection in `tasks`, when `role` runs it (`orders
    /// serve` and `orders projections run` do, `serve --front` does not).
    pub async fn spawn_summaries(&self, role: &Role, tasks: &mut Tasks) -> Result<(), StartError> {
        if self.client.is_none() || !role.runs(ORDER_SUMMARIES) {
            return Ok(());
        }
        let runner = self.summaries().await?;
        let mode = self.backend().await?.mode;
        spawn(&runner, role, &mode, tasks);
        Ok(())
    }
}

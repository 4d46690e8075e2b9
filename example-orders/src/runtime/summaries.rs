//! The order summaries' KV projection (PostgreSQL + JetStream only): it publishes each
//! order's view to a JetStream KV bucket, driven by a projection runner like the read
//! models (checkpoints, partitions shared between processes, dead letters in PostgreSQL).

use tidemark_nats::{ensure_kv_bucket, JetStreamFeed, KvProjection};
use tidemark_postgres::PgEventStore;
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;

use super::postgres::PgDeployment;
use super::runners::{spawn, Role};
use super::tasks::Tasks;
use super::StartError;
use crate::domain::{codec, OrderEvent};
use crate::read_models::{summarise, OrderView, ORDER_SUMMARIES};

/// The runner of the order summaries' KV projection.
pub type SummaryRunner =
    ProjectionRunner<KvProjection<OrderEvent, OrderView>, PgReadModels, PgEventStore, JetStreamFeed>;

impl PgDeployment {
    /// The runner publishing the order summaries to the bucket
    /// [`PgOptions::summary_bucket`](super::PgOptions::summary_bucket) names, which it
    /// creates when it does not exist.
    pub async fn summaries(&self) -> Result<SummaryRunner, StartError> {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let bucket = ensure_kv_bucket(&jetstream, &self.options.summary_bucket()).await?;
        let projection = KvProjection::new(ORDER_SUMMARIES, codec()?, jetstream, bucket, summarise)?;
        let backend = self.backend().await?;
        let config = RunnerConfig::default();
        Ok(ProjectionRunner::new(projection, backend.read_models, backend.store, backend.feed, config)?)
    }

    /// Runs the order summaries' KV projection in `tasks`, when `role` runs it (`orders
    /// serve` and `orders projections run` do, `serve --front` does not).
    pub async fn spawn_summaries(&self, role: &Role, tasks: &mut Tasks) -> Result<(), StartError> {
        if !role.runs(ORDER_SUMMARIES) {
            return Ok(());
        }
        let runner = self.summaries().await?;
        let mode = self.backend().await?.mode;
        spawn(&runner, role, &mode, tasks);
        Ok(())
    }
}

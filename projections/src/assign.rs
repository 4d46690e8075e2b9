//! Sharing partitions between runner instances through PostgreSQL advisory locks.
//!
//! Every instance of a projection holds one "member" lock (which counts the live
//! instances) and one lock per partition it applies. Each aims at `ceil(P / members)`
//! partitions: it gives back extras and takes free ones at every rebalance tick. A killed
//! instance's connection closes, its locks vanish and the others take its partitions at
//! their next tick. The locks only divide the work: correctness never depends on them,
//! because every batch locks its partition's row in the read-model database.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use tidemark::EventStore;
use tidemark_nats::fnv1a_32;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{database, Result};
use crate::feed::Feed;
use crate::partition::{run_partition, Shared};
use crate::projection::Projection;
use crate::read_models::ReadModels;

/// Where runner instances meet to share partitions.
#[derive(Debug, Clone)]
pub struct Coordination {
    pool: PgPool,
    namespace: String,
}

impl Coordination {
    /// Instances using the same database and `namespace` (for example the store's schema)
    /// share the partitions of projections with the same consumer name.
    pub fn postgres(pool: PgPool, namespace: impl Into<String>) -> Self {
        Self { pool, namespace: namespace.into() }
    }
}

impl Coordination {
    /// Waits for, then holds, an exclusive lock named `what` for the projection `consumer`
    /// until the returned connection is dropped. No transaction stays open meanwhile.
    pub(crate) async fn exclusive(&self, what: &str, consumer: &str) -> Result<PgConnection> {
        let mut conn = self.pool.acquire().await.map_err(database("opening a lock connection"))?.detach();
        sqlx::query("SELECT pg_advisory_lock($1, 0)")
            .bind(key(what, &self.namespace, consumer))
            .execute(&mut conn)
            .await
            .map_err(database("taking an advisory lock"))?;
        Ok(conn)
    }
}

/// The most instances of one projection that can share its partitions.
const MAX_MEMBERS: i32 = 1024;

struct Running {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped without a clean stop (the coordinator itself was aborted): end the task.
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

impl Running {
    /// Stops the loop after its current batch and waits for it.
    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

fn key(kind: &str, namespace: &str, consumer: &str) -> i32 {
    let hash = fnv1a_32(format!("tidemark:{kind}:{namespace}:{consumer}").as_bytes());
    i32::try_from(hash & 0x7fff_ffff).unwrap_or(0)
}

struct Locks {
    conn: PgConnection,
    member_key: i32,
    partition_key: i32,
}

impl Locks {
    async fn open(coordination: &Coordination, consumer: &str) -> Result<Self> {
        let conn = coordination.pool.acquire().await.map_err(database("opening the coordination connection"))?;
        let mut locks = Self {
            conn: conn.detach(),
            member_key: key("members", &coordination.namespace, consumer),
            partition_key: key("partitions", &coordination.namespace, consumer),
        };
        for slot in 0..MAX_MEMBERS {
            if locks.try_lock(locks.member_key, slot).await? {
                return Ok(locks);
            }
        }
        Err(crate::error::ProjectionError::Config("more than 1024 instances of one projection"))
    }

    async fn try_lock(&mut self, key: i32, id: i32) -> Result<bool> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(key)
            .bind(id)
            .fetch_one(&mut self.conn)
            .await
            .map_err(database("taking an advisory lock"))
    }

    async fn unlock(&mut self, partition: u32) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(self.partition_key)
            .bind(i32::try_from(partition).unwrap_or(i32::MAX))
            .execute(&mut self.conn)
            .await
            .map_err(database("releasing an advisory lock"))?;
        Ok(())
    }

    async fn members(&mut self) -> Result<u32> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted \
             AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(i64::from(self.member_key))
        .fetch_one(&mut self.conn)
        .await
        .map_err(database("counting runner instances"))?;
        Ok(u32::try_from(count).unwrap_or(1).max(1))
    }
}

/// Takes and gives back partitions until `shutdown`, reconnecting after failures.
pub(crate) async fn coordinate<P, R, S, F>(
    shared: Arc<Shared<P, R, S, F>>,
    coordination: Coordination,
    shutdown: CancellationToken,
) where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let mut owned: BTreeMap<u32, Running> = BTreeMap::new();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match Locks::open(&coordination, &shared.consumer).await {
            Ok(mut locks) => {
                failures = 0;
                let result = balance(&shared, &mut locks, &mut owned, &shutdown).await;
                stop_all(&shared, &mut owned).await;
                drop(locks);
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(projection = %shared.worker.name, error = %e, "lost the coordination connection");
                        shared.status.failed(e.to_string());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(projection = %shared.worker.name, error = %e, "cannot join the runner group; retrying");
                shared.status.failed(e.to_string());
            }
        }
        failures = failures.saturating_add(1);
        let delay = shared.config.min_backoff.saturating_mul(2u32.saturating_pow(failures.min(16)));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay.min(shared.config.max_backoff)) => {}
        }
    }
}

async fn stop_all<P, R, S, F>(shared: &Shared<P, R, S, F>, owned: &mut BTreeMap<u32, Running>) {
    for (partition, running) in std::mem::take(owned) {
        running.stop().await;
        shared.status.owns(partition, false);
    }
}

/// One rebalance per tick until `shutdown` (Ok) or a lock query fails (Err).
async fn balance<P, R, S, F>(
    shared: &Arc<Shared<P, R, S, F>>,
    locks: &mut Locks,
    owned: &mut BTreeMap<u32, Running>,
    shutdown: &CancellationToken,
) -> Result<()>
where
    R: ReadModels,
    P: Projection<R>,
    S: EventStore + 'static,
    F: Feed,
{
    let partitions = shared.feed.partitions();
    loop {
        let members = locks.members().await?;
        let target = partitions.div_ceil(members) as usize;
        while owned.len() > target {
            let Some((partition, running)) = owned.pop_last() else { break };
            running.stop().await;
            locks.unlock(partition).await?;
            shared.status.owns(partition, false);
            tracing::info!(projection = %shared.worker.name, partition, "gave a partition back");
        }
        for partition in 0..partitions {
            if owned.len() >= target {
                break;
            }
            if owned.contains_key(&partition) {
                continue;
            }
            let id = i32::try_from(partition).unwrap_or(i32::MAX);
            if locks.try_lock(locks.partition_key, id).await? {
                let stop = CancellationToken::new();
                let handle = tokio::spawn(run_partition(shared.clone(), partition, stop.clone()));
                owned.insert(partition, Running { stop, handle: Some(handle) });
                shared.status.owns(partition, true);
                tracing::info!(projection = %shared.worker.name, partition, "took a partition");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(shared.config.rebalance_interval) => {}
        }
    }
}

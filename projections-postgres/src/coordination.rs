//! Sharing partitions between runner instances through PostgreSQL advisory locks.
//!
//! Every instance of a projection holds one "member" lock (which counts the live
//! instances) and one lock per partition it applies. A killed instance's connection
//! closes and its locks vanish, so the others can take its partitions. The locks only
//! divide the work: correctness never depends on them, because every batch locks its
//! partition's row in the read-model database.

use sqlx::{PgConnection, PgPool};
use tidemark_projections::{Coordinator, ProjectionError, Result, Seat};

use crate::error::database;

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

impl Coordinator for Coordination {
    type Seat = Locks;
    type Guard = PgConnection;

    async fn join(&self, consumer: &str) -> Result<Locks> {
        Locks::open(self, consumer).await
    }

    /// Holds the lock until the returned connection is dropped. No transaction stays open
    /// meanwhile.
    async fn exclusive(&self, what: &'static str, consumer: &str) -> Result<PgConnection> {
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

fn key(kind: &str, namespace: &str, consumer: &str) -> i32 {
    let hash = tidemark::__private::stable_hash(format!("tidemark:{kind}:{namespace}:{consumer}").as_bytes());
    i32::try_from(hash & 0x7fff_ffff).unwrap_or(0)
}

/// One instance's advisory locks: its member slot and the partitions it claimed, all held
/// by one connection (closing it releases them).
#[derive(Debug)]
pub struct Locks {
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
        Err(ProjectionError::Config("more than 1024 instances of one projection"))
    }

    async fn try_lock(&mut self, key: i32, id: i32) -> Result<bool> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(key)
            .bind(id)
            .fetch_one(&mut self.conn)
            .await
            .map_err(database("taking an advisory lock"))
    }

    async fn unlock_partition(&mut self, partition: u32) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(self.partition_key)
            .bind(i32::try_from(partition).unwrap_or(i32::MAX))
            .execute(&mut self.conn)
            .await
            .map_err(database("releasing an advisory lock"))?;
        Ok(())
    }

    async fn count_members(&mut self) -> Result<u32> {
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

impl Seat for Locks {
    async fn members(&mut self) -> Result<u32> {
        self.count_members().await
    }

    async fn try_claim(&mut self, partition: u32) -> Result<bool> {
        let id = i32::try_from(partition).unwrap_or(i32::MAX);
        self.try_lock(self.partition_key, id).await
    }

    async fn release(&mut self, partition: u32) -> Result<()> {
        self.unlock_partition(partition).await
    }
}

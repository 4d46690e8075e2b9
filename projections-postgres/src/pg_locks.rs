//! How batches of a projection exclude each other on PostgreSQL: advisory transaction
//! locks, not row locks. A row lock is a write, and a write gives the transaction an id
//! at once; a read-model transaction that holds an id holds the store's gap-safe horizon
//! back, so the relay cannot publish events appended after it until it ends. With
//! advisory locks a batch takes its id only at its first real write (the projection's),
//! a round trip later.
//!
//! A batch takes its projection's lock shared and its partition's lock exclusive; a
//! rebuild, a reset or a drop takes the projection's lock exclusive, so it waits for every
//! batch of the projection and they wait for it. The keys are 64-bit hashes of the store
//! schema, the projection and the partition (the bigint form of the locks, which never
//! meets the two-integer form the partition assignment uses).

use tidemark_projections::Result;

use crate::error::database;
use crate::postgres::{PgReadModels, PgTx};

/// FNV-1a, 64 bits.
fn fnv1a_64(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl PgReadModels {
    fn projection_key(&self, projection: &str) -> i64 {
        fnv1a_64(format!("tidemark:projection:{}:{projection}", self.schema()).as_bytes())
    }

    fn partition_key(&self, projection: &str, partition: u32) -> i64 {
        fnv1a_64(format!("tidemark:partition:{}:{projection}:{partition}", self.schema()).as_bytes())
    }

    /// The statement taking a batch's locks. Only integers go into its text, so it can be
    /// sent with `BEGIN` as one simple query.
    pub(crate) fn batch_locks_sql(&self, projection: &str, partition: u32) -> String {
        format!(
            "SELECT pg_advisory_xact_lock_shared({}), pg_advisory_xact_lock({})",
            self.projection_key(projection),
            self.partition_key(projection, partition)
        )
    }

    /// Takes a batch's locks in `tx`, which did not take them when it began.
    pub(crate) async fn take_batch_locks(&self, tx: &mut PgTx, projection: &str, partition: u32) -> Result<()> {
        if tx.holds(projection, partition) {
            return Ok(());
        }
        let sql = self.batch_locks_sql(projection, partition);
        sqlx::query(&sql).execute(tx.conn()).await.map_err(database("locking a projection partition"))?;
        tx.locked(projection, partition);
        Ok(())
    }

    /// Takes the whole projection's lock: no batch of it runs until `tx` ends.
    pub(crate) async fn lock_all(&self, tx: &mut PgTx, projection: &str) -> Result<()> {
        let sql = format!("SELECT pg_advisory_xact_lock({})", self.projection_key(projection));
        sqlx::query(&sql).execute(tx.conn()).await.map_err(database("locking a projection"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fnv1a_64;

    #[test]
    fn keys_follow_the_published_fnv1a_64_values() {
        // Reference values of FNV-1a 64: the empty input and "a".
        assert_eq!(fnv1a_64(b"") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a") as u64, 0xaf63_dc4c_8601_ec8c);
    }
}

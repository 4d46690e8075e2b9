//! A batch that waits for its partition's lock starts from what the transaction holding it
//! committed: the seen versions it reads in the same round trip as the lock are read again
//! when another transaction held the lock after the batch's snapshot was taken.

use std::time::Duration;

use tidemark::{LogPosition, StreamId};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{PartitionState, PgReadModels, PgTx, Progress, ReadModels, Seen};
use tidemark_testkit::TestSchema;
use tokio::task::JoinHandle;

type Started = (PartitionState, std::collections::HashMap<StreamId, Seen>);

async fn set_up() -> (TestSchema, PgReadModels, Vec<StreamId>) {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let models = PgReadModels::new(&store);
    let streams = vec![StreamId::new("account-1").expect("stream id"), StreamId::new("account-2").expect("stream id")];
    (schema, models, streams)
}

fn progress(position: LogPosition, events: u64, stream: &StreamId, version: u64) -> Progress {
    Progress {
        position,
        events,
        streams: vec![(stream.clone(), Seen { version, parked: false })],
        ..Progress::default()
    }
}

/// Starts a batch of partition 3 in another task, waits until it is blocked on the lock
/// `holder` holds, then commits `holder` and returns what the batch started from.
async fn wait_behind(schema: &TestSchema, models: &PgReadModels, streams: &[StreamId], holder: PgTx) -> Started {
    let second: JoinHandle<Started> = tokio::spawn({
        let (models, streams) = (models.clone(), streams.to_vec());
        async move {
            let mut tx = models.begin().await.expect("begin");
            let started = models.lock_and_read_seen(&mut tx, "totals", 3, &streams).await.expect("lock");
            models.commit(tx).await.expect("commit");
            started
        }
    });
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE '%\"{}\".projection_partitions%'",
        schema.name()
    );
    tidemark_testkit::wait_until("the batch waits for the partition lock", Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar(&waiting).fetch_one(schema.pool()).await.expect("pg_stat_activity");
        n == 1
    })
    .await;
    assert!(!second.is_finished(), "the batch did not wait for the lock");
    models.commit(holder).await.expect("commit the holder");
    second.await.expect("the waiting batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_for_the_partition_lock_reads_what_the_batch_before_it_committed() {
    let (schema, models, streams) = set_up().await;
    let stream = &streams[0];

    // The partition's first batch ever: the waiting batch's snapshot has no partition row.
    let mut first = models.begin().await.expect("begin");
    let (state, seen) = models.lock_and_read_seen(&mut first, "totals", 3, &streams).await.expect("lock");
    assert_eq!(state.events, 0);
    assert!(seen.is_empty(), "{seen:?}");
    models.record(&mut first, "totals", 3, &progress(LogPosition::new(7, 9), 4, stream, 4)).await.expect("record");
    let (state, seen) = wait_behind(&schema, &models, &streams, first).await;
    assert_eq!(state.position, LogPosition::new(7, 9));
    assert_eq!(state.events, 4);
    assert_eq!(seen.get(stream), Some(&Seen { version: 4, parked: false }), "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");

    // Later batches: the row exists in every snapshot, so only its lock count tells.
    let mut third = models.begin().await.expect("begin");
    let (_, seen) = models.lock_and_read_seen(&mut third, "totals", 3, &streams).await.expect("lock");
    assert_eq!(seen.get(stream), Some(&Seen { version: 4, parked: false }), "{seen:?}");
    models.record(&mut third, "totals", 3, &progress(LogPosition::new(8, 12), 2, stream, 6)).await.expect("record");
    let (state, seen) = wait_behind(&schema, &models, &streams, third).await;
    assert_eq!((state.position, state.events), (LogPosition::new(8, 12), 6));
    assert_eq!(seen.get(stream), Some(&Seen { version: 6, parked: false }), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_behind_a_whole_projection_lock_reads_what_that_transaction_changed() {
    let (schema, models, streams) = set_up().await;
    let stream = &streams[1];
    let mut first = models.begin().await.expect("begin");
    models.lock_and_read_seen(&mut first, "totals", 3, &streams).await.expect("lock");
    models.record(&mut first, "totals", 3, &progress(LogPosition::new(7, 9), 1, stream, 1)).await.expect("record");
    models.commit(first).await.expect("commit");

    // A rebuild or reset locks every partition of the projection at once; here it moves a
    // stream's version on without touching the partition's own row.
    let mut whole = models.begin().await.expect("begin");
    models.lock_projection(&mut whole, "totals").await.expect("lock the projection");
    let moved = Progress { streams: vec![(stream.clone(), Seen { version: 9, parked: false })], ..Progress::default() };
    models.record(&mut whole, "totals", 4, &moved).await.expect("record the stream");
    let (_, seen) = wait_behind(&schema, &models, &streams, whole).await;
    assert_eq!(seen.get(stream), Some(&Seen { version: 9, parked: false }), "{seen:?}");
}

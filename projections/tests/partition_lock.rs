//! A batch that waits for its partition's lock starts from what the batch holding it
//! committed: the seen versions it reads in the same round trip as the lock are read after
//! the lock is granted, not before.

use std::time::Duration;

use tidemark::{LogPosition, StreamId};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{PgReadModels, Progress, ReadModels, Seen};
use tidemark_testkit::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_for_the_partition_lock_reads_what_the_batch_before_it_committed() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let models = PgReadModels::new(&store);
    let stream = StreamId::new("account-1").expect("stream id");
    let streams = vec![stream.clone(), StreamId::new("account-2").expect("stream id")];

    let mut first = models.begin().await.expect("begin");
    let (state, seen) = models.lock_and_read_seen(&mut first, "totals", 3, &streams).await.expect("lock");
    assert_eq!(state.events, 0);
    assert!(seen.is_empty(), "{seen:?}");
    let progress = Progress {
        position: LogPosition::new(7, 9),
        events: 4,
        streams: vec![(stream.clone(), Seen { version: 4, parked: false })],
        ..Progress::default()
    };
    models.record(&mut first, "totals", 3, &progress).await.expect("record");

    let second = tokio::spawn({
        let (models, streams) = (models.clone(), streams.clone());
        async move {
            let mut tx = models.begin().await.expect("begin");
            let started = models.lock_and_read_seen(&mut tx, "totals", 3, &streams).await.expect("lock");
            models.commit(tx).await.expect("commit");
            started
        }
    });
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%\"{}\".lock_projection_partition%'",
        schema.name()
    );
    tidemark_testkit::wait_until("the second batch waits for the partition lock", Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar(&waiting).fetch_one(schema.pool()).await.expect("pg_stat_activity");
        n == 1
    })
    .await;
    assert!(!second.is_finished(), "the second batch did not wait for the first");
    models.commit(first).await.expect("commit the first batch");

    let (state, seen) = second.await.expect("second batch");
    assert_eq!(state.position, LogPosition::new(7, 9));
    assert_eq!(state.events, 4);
    assert_eq!(seen.get(&stream), Some(&Seen { version: 4, parked: false }), "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");
}

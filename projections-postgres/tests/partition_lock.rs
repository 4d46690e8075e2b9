//! A batch that waits for its partition's lock starts from what the transaction holding it
//! committed, whether it took the lock with its `BEGIN` or afterwards; a rebuild's lock of
//! the whole projection holds every batch of it back the same way. The locks are advisory,
//! so taking them gives a transaction no id (which would hold the relay's horizon back).

mod support;

use tidemark::{LogPosition, StreamId, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{PartitionState, Progress, ReadModels, ReadModelsAdmin, Seen};
use tidemark_projections_postgres::{PgReadModels, PgTx};
use tidemark_testkit::TestSchema;
use tokio::task::JoinHandle;

type Started = (PartitionState, std::collections::HashMap<StreamId, Seen>);

fn progress(position: LogPosition, events: u64, stream: &StreamId, version: u64) -> Progress {
    Progress {
        position,
        events,
        streams: vec![(stream.clone(), Seen { version: StreamVersion(version), parked: false })],
        ..Progress::default()
    }
}

/// Starts a batch of partition 3 in another task (its locks taken with `BEGIN`, or after
/// a plain `BEGIN`), waits until it is blocked on a lock, checks that `holder` holds it
/// back, then commits `holder` and returns what the batch started from.
async fn wait_behind(
    schema: &TestSchema,
    models: &PgReadModels,
    streams: &[StreamId],
    holder: PgTx,
    with_begin: bool,
) -> Started {
    let second: JoinHandle<Started> = tokio::spawn({
        let (models, streams) = (models.clone(), streams.to_vec());
        async move {
            let mut tx =
                if with_begin { models.begin_batch("totals", 3).await } else { models.begin().await }.expect("begin");
            let started = models.lock_and_read_seen(&mut tx, "totals", 3, &streams).await.expect("lock");
            models.commit(tx).await.expect("commit");
            started
        }
    });
    support::one_waits_for_an_advisory_lock(schema.pool()).await;
    assert!(!second.is_finished(), "the batch did not wait for the lock");
    models.commit(holder).await.expect("commit the holder");
    second.await.expect("the waiting batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_for_a_lock_reads_what_the_transaction_holding_it_committed() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let models = PgReadModels::new(&store);
    models.migrate().await.expect("projection migrations");
    let streams = vec![StreamId::new("account-1").expect("stream id"), StreamId::new("account-2").expect("stream id")];
    let stream = &streams[0];

    // The partition's first batch: no partition row yet. The waiting batch locks with BEGIN.
    let mut first = models.begin_batch("totals", 3).await.expect("begin");
    let (state, seen) = models.lock_and_read_seen(&mut first, "totals", 3, &streams).await.expect("lock");
    assert_eq!((state.events, seen.len()), (0, 0), "{seen:?}");
    let xid: Option<String> =
        sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned()::text").fetch_one(first.conn()).await.expect("xid");
    assert_eq!(xid, None, "taking the locks gave the transaction an id");
    models.record(&mut first, "totals", 3, &progress(LogPosition::new(7, 9), 4, stream, 4)).await.expect("record");
    let (state, seen) = wait_behind(&schema, &models, &streams, first, true).await;
    assert_eq!((state.position, state.events), (LogPosition::new(7, 9), 4));
    assert_eq!(seen.get(stream), Some(&Seen { version: StreamVersion(4), parked: false }), "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");

    // A later batch; the waiting one takes its locks after a plain BEGIN.
    let mut third = models.begin().await.expect("begin");
    let (_, seen) = models.lock_and_read_seen(&mut third, "totals", 3, &streams).await.expect("lock");
    assert_eq!(seen.get(stream), Some(&Seen { version: StreamVersion(4), parked: false }), "{seen:?}");
    models.record(&mut third, "totals", 3, &progress(LogPosition::new(8, 12), 2, stream, 6)).await.expect("record");
    let (state, seen) = wait_behind(&schema, &models, &streams, third, false).await;
    assert_eq!((state.position, state.events), (LogPosition::new(8, 12), 6));
    assert_eq!(seen.get(stream), Some(&Seen { version: StreamVersion(6), parked: false }), "{seen:?}");

    // A rebuild or reset locks the whole projection; here it moves a stream's version on
    // without touching the partition's row.
    let other = &streams[1];
    let mut whole = models.begin().await.expect("begin");
    models.lock_projection(&mut whole, "totals").await.expect("lock the projection");
    let moved = Progress {
        streams: vec![(other.clone(), Seen { version: StreamVersion(9), parked: false })],
        ..Progress::default()
    };
    models.record(&mut whole, "totals", 4, &moved).await.expect("record the stream");
    let (state, seen) = wait_behind(&schema, &models, &streams, whole, true).await;
    assert_eq!(state.events, 6, "partition 3's own row is unchanged");
    assert_eq!(seen.get(other), Some(&Seen { version: StreamVersion(9), parked: false }), "{seen:?}");
}

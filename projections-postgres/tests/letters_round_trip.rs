//! Dead letters and rogue messages recorded with a batch on PostgreSQL read back exactly as
//! they were written: every field, the log position's two halves included.

use tidemark::{EventId, LogPosition, StreamId, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{DeadLetter, DeadLetterStatus, Progress, ReadModels, ReadModelsAdmin, RogueMessage};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::TestSchema;

async fn read_models(schema: &TestSchema) -> PgReadModels {
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config.clone()).expect("store");
    store.migrate().await.expect("migrate");
    let models = PgReadModels::from_pool(schema.pool().clone(), &config).expect("models");
    models.migrate().await.expect("projection migrations");
    models
}

fn letter(version: u64, position: LogPosition, status: DeadLetterStatus) -> DeadLetter {
    DeadLetter {
        stream_id: StreamId::new("account-7").expect("id"),
        stream_version: StreamVersion(version),
        event_id: EventId(uuid::Uuid::new_v4()),
        event_type: "Deposited".to_owned(),
        position,
        status,
        error: format!("refused version {version}"),
    }
}

#[tokio::test]
async fn dead_letters_and_rogue_messages_read_back_as_recorded() {
    let schema = TestSchema::new().await;
    let models = read_models(&schema).await;
    let letters = vec![
        letter(3, LogPosition::new(9_000_000_001, 41), DeadLetterStatus::Parked),
        letter(4, LogPosition::new(9_000_000_002, 7), DeadLetterStatus::Skipped),
    ];
    let claimed = StreamId::new("account-8").expect("id");
    let rogue = RogueMessage::new("seq 12", 1, "events.1.account-8", "a payload that is not JSON").claiming(
        claimed,
        StreamVersion(5),
        EventId(uuid::Uuid::new_v4()),
    );
    let progress = Progress {
        position: LogPosition::new(9_000_000_002, 7),
        dead_letters: letters.clone(),
        rogue: vec![rogue.clone()],
        ..Progress::default()
    };
    let mut tx = models.begin_batch("ledger", 0).await.expect("begin");
    models.record(&mut tx, "ledger", 0, &progress).await.expect("record");
    models.commit(tx).await.expect("commit");

    assert_eq!(models.dead_letters("ledger").await.expect("dead letters"), letters);
    assert_eq!(models.rogue_messages("ledger").await.expect("rogue messages"), vec![rogue]);
    assert!(models.dead_letters("other").await.expect("dead letters").is_empty());
}

//! Statements run for every projection batch (the store's checks of delivered events) are
//! planned once per connection, not on every
//! call: their inputs come in a form whose row count PostgreSQL estimates the same whatever
//! the values, so after five plans made for the values it keeps a generic one.

mod support;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tidemark::{CommandId, EventStore, ExpectedVersion, StreamVersion};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_testkit::TestSchema;

#[tokio::test]
async fn the_identity_checks_of_a_batch_keep_one_plan() {
    let schema = TestSchema::new().await;
    support::store(&schema, PgStoreConfig::default()).await;
    // A log of some size over many streams, analysed: on a small table every plan costs
    // about the same, and PostgreSQL keeps the generic one whatever the statement's form.
    let seed = format!(
        "INSERT INTO \"{0}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload) \
         SELECT gen_random_uuid(), 'seed-' || (i % 50000), i / 50000 + 1, 'Ticked', 1, '{{}}' \
         FROM generate_series(0, 199999) AS i",
        schema.name()
    );
    sqlx::query(&seed).execute(schema.pool()).await.expect("seed");
    sqlx::query(&format!("ANALYZE \"{}\".events", schema.name())).execute(schema.pool()).await.expect("analyze");
    // One connection: every call below runs on it, and its prepared statements show how
    // each was planned.
    let options = PgConnectOptions::from_str(schema.url()).expect("url");
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.expect("connect");
    let store = PgEventStore::from_pool(pool.clone(), PgStoreConfig::default().schema(schema.name())).expect("store");
    store.append(support::append("account-1", ExpectedVersion::NoStream, 2)).await.expect("append");
    for n in 0..12u64 {
        // A batch's check names one event, as on a lightly loaded runner.
        let at = [(support::stream(&format!("seed-{n}")), StreamVersion(2))];
        let found = store.identities(&at).await.expect("identities");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].stream_version, StreamVersion(2));
        let delivered = store.read_stream(&at[0].0, StreamVersion(2), 1).await.expect("read");
        let refs: Vec<_> = delivered.iter().collect();
        assert!(store.verify_events(&refs).await.expect("verify").is_empty());
    }
    let at = [(support::stream("account-1"), StreamVersion(2)), (support::stream("none-1"), StreamVersion(1))];
    let found = store.identities(&at).await.expect("identities");
    assert_eq!(found.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), vec!["account-1"]);
    let plans = |pattern: &'static str| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE $1",
        )
        .bind(pattern)
        .fetch_one(&pool)
    };
    let (generic, custom) = plans("%AS k(stream_id, stream_version)%").await.expect("the identities statement");
    assert!(generic > 0 && custom <= 5, "identities planned again on each call: {generic} generic, {custom} custom");
    let (generic, custom) = plans("%WITH ORDINALITY AS k(%").await.expect("the verify statement");
    assert!(generic > 0 && custom <= 5, "verification planned again on each call: {generic} generic, {custom} custom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_group_commit_statements_keep_one_plan() {
    let schema = TestSchema::new().await;
    support::store(&schema, PgStoreConfig::default()).await;
    // One connection, so that every batch runs on it and its prepared statements show how
    // each was planned; one statement in flight, so that appends sent together gather
    // into batches behind it.
    let options = PgConnectOptions::from_str(schema.url()).expect("url");
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.expect("connect");
    let config = PgStoreConfig::default().schema(schema.name()).group_commit(true).group_commit_limits(64, 1);
    let store = PgEventStore::from_pool(pool.clone(), config).expect("store");
    for round in 0..12 {
        let news =
            (0..4).map(|i| store.append(support::append(&format!("s-{round}-{i}"), ExpectedVersion::NoStream, 1)));
        for outcome in futures_util::future::join_all(news).await {
            outcome.expect("append to a new stream");
        }
        let exact = (0..4).map(|i| {
            store.append(support::append(&format!("s-{round}-{i}"), ExpectedVersion::Exact(StreamVersion(1)), 2))
        });
        for outcome in futures_util::future::join_all(exact).await {
            assert_eq!(outcome.expect("append at an exact version").version, StreamVersion(3));
        }
        // The same with command ids, which the statements record beside the events.
        let commands = (0..4).map(|i| {
            let append = support::append(&format!("c-{round}-{i}"), ExpectedVersion::NoStream, 1);
            store.append(append.with_command_id(CommandId::new()))
        });
        for outcome in futures_util::future::join_all(commands).await {
            assert!(outcome.expect("a command on a new stream").command_id.is_some());
        }
        let commands = (0..4).map(|i| {
            let append = support::append(&format!("c-{round}-{i}"), ExpectedVersion::Exact(StreamVersion(1)), 2);
            store.append(append.with_command_id(CommandId::new()))
        });
        for outcome in futures_util::future::join_all(commands).await {
            assert_eq!(outcome.expect("a command at an exact version").version, StreamVersion(3));
        }
    }
    let commands = "%AS q(stream_id, base, command_id, n)%";
    for (form, pattern, with_commands) in [
        ("plain", "%AS q(stream_id, base, i)%", false),
        ("one-event", "%AS u(stream_id, base, id,%", false),
        ("plain with command ids", "%AS q(stream_id, base, i)%", true),
        ("one-event with command ids", "%AS u(stream_id, base, id,%", true),
    ] {
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE $1 AND (statement LIKE $2) = $3",
        )
        .bind(pattern)
        .bind(commands)
        .bind(with_commands)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("the {form} batch statement did not run: {e}"));
        assert!(
            generic > 0 && custom <= 5,
            "{form} batches planned again on each call: {generic} generic, {custom} custom"
        );
    }
}

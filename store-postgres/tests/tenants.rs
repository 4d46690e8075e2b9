//! Tenants: one tenant per stream (enforced by the database), a tenant's view of the
//! store, and row-level security for roles that do not own the tables.

mod support;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use support::{event, stream};
use tidemark::{
    AppendRequest, CommandId, Error, EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, Snapshot,
    StreamVersion,
};
use tidemark_postgres::{PgEventStore, PgStoreConfig, SetupError};
use tidemark_testkit::{unique_name, TestSchema};

fn of(tenant: Option<&str>, n: u64) -> NewEvent {
    let metadata = match tenant {
        Some(t) => Metadata::new().with_tenant(t),
        None => Metadata::new(),
    };
    event(n).with_metadata(metadata)
}

fn request(id: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest::new(stream(id), expected, events)
}

fn assert_mismatch(result: Result<tidemark::AppendOutcome, Error>, stream_tenant: Option<&str>, tenant: Option<&str>) {
    match result {
        Err(Error::TenantMismatch { stream_tenant: s, tenant: t, .. }) => {
            assert_eq!((s.as_deref(), t.as_deref()), (stream_tenant, tenant));
        }
        other => panic!("expected a tenant mismatch, got {other:?}"),
    }
}

async fn with_config(schema: &TestSchema, group_commit: bool) -> PgEventStore {
    support::store(schema, PgStoreConfig::default().group_commit(group_commit)).await
}

#[tokio::test]
async fn a_stream_keeps_the_tenant_of_its_first_event() {
    for group_commit in [false, true] {
        let schema = TestSchema::new().await;
        let store = with_config(&schema, group_commit).await;
        store.append(request("order-1", ExpectedVersion::NoStream, vec![of(Some("a"), 1)])).await.expect("first");
        store.append(request("order-1", ExpectedVersion::Any, vec![of(Some("a"), 2)])).await.expect("same tenant");

        let other = store.append(request("order-1", ExpectedVersion::Any, vec![of(Some("b"), 3)])).await;
        assert_mismatch(other, Some("a"), Some("b"));
        let none = store.append(request("order-1", ExpectedVersion::Exact(StreamVersion(2)), vec![of(None, 4)])).await;
        assert_mismatch(none, Some("a"), None);
        let with_command =
            request("order-1", ExpectedVersion::Any, vec![of(Some("b"), 5)]).with_command_id(CommandId::new());
        let command = with_command.command_id.expect("command id");
        assert_mismatch(store.append(with_command).await, Some("a"), Some("b"));
        assert_eq!(store.command_outcome(command).await.expect("outcome"), None, "nothing recorded");

        // A stream without a tenant stays without one.
        store.append(request("plain-1", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("untenanted");
        store.append(request("plain-1", ExpectedVersion::Any, vec![of(None, 2)])).await.expect("still none");
        let tenanted = store.append(request("plain-1", ExpectedVersion::Any, vec![of(Some("a"), 3)])).await;
        assert_mismatch(tenanted, None, Some("a"));

        // One append mixing tenants on a new stream writes nothing.
        let mixed =
            store.append(request("mixed-1", ExpectedVersion::NoStream, vec![of(Some("a"), 1), of(Some("b"), 2)])).await;
        assert_mismatch(mixed, Some("a"), Some("b"));

        assert_eq!(store.stream_version(&stream("order-1")).await.expect("version"), StreamVersion(2));
        assert_eq!(store.stream_version(&stream("plain-1")).await.expect("version"), StreamVersion(2));
        assert_eq!(store.stream_version(&stream("mixed-1")).await.expect("version"), StreamVersion(0));
        let log = support::log_of(&store, 4).await;
        assert_eq!(log.len(), 4, "group commit {group_commit}: only the accepted events are stored");
    }
}

#[tokio::test]
async fn concurrent_appends_of_two_tenants_to_one_stream_leave_one_tenant() {
    let schema = TestSchema::new().await;
    let store = with_config(&schema, true).await;
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let store = store.clone();
        let tenant = if i % 2 == 0 { "a" } else { "b" };
        tasks.push(tokio::spawn(async move {
            // A version race lost too often is a conflict: try again until stored or refused.
            loop {
                match store.append(request("shared-1", ExpectedVersion::Any, vec![of(Some(tenant), i)])).await {
                    Err(Error::Conflict { .. }) => continue,
                    other => return other,
                }
            }
        }));
    }
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => {}
            Err(Error::TenantMismatch { .. }) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    let events = store.read_stream(&stream("shared-1"), StreamVersion(1), 100).await.expect("read");
    assert_eq!(events.len() + refused, 40, "every append was stored or refused");
    assert_eq!(events.len(), 20, "exactly the first event's tenant's appends are stored");
    let first = events[0].metadata.tenant.clone();
    assert!(events.iter().all(|e| e.metadata.tenant == first), "one tenant per stream");
}

#[tokio::test]
async fn a_tenant_view_reads_only_its_tenants_streams() {
    let schema = TestSchema::new().await;
    let store = with_config(&schema, false).await;
    let (a, b) = (store.for_tenant("acme").expect("a"), store.for_tenant("globex").expect("b"));

    // The view stamps its tenant on events that carry none.
    let command_a = CommandId::new();
    a.append(request("order-a", ExpectedVersion::NoStream, vec![of(None, 1), of(None, 2)]).with_command_id(command_a))
        .await
        .expect("append a");
    let command_b = CommandId::new();
    b.append(request("order-b", ExpectedVersion::NoStream, vec![of(Some("globex"), 1)]).with_command_id(command_b))
        .await
        .expect("append b");
    store.append(request("plain", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("untenanted");
    support::log_of(&store, 4).await;

    let own = a.read_stream(&stream("order-a"), StreamVersion(1), 10).await.expect("read own");
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|e| e.metadata.tenant.as_deref() == Some("acme")), "stamped with the tenant");
    assert!(a.read_stream(&stream("order-b"), StreamVersion(1), 10).await.expect("read other").is_empty());
    assert!(a.read_stream(&stream("plain"), StreamVersion(1), 10).await.expect("read plain").is_empty());
    assert_eq!(a.stream_version(&stream("order-b")).await.expect("version"), StreamVersion(0));
    assert_eq!(a.stream_version(&stream("order-a")).await.expect("version"), StreamVersion(2));

    let log_a = a.read_log(LogPosition::START, 100).await.expect("log a");
    assert_eq!(log_a.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["order-a", "order-a"]);
    let log_b = b.read_log(LogPosition::START, 100).await.expect("log b");
    assert_eq!(log_b.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["order-b"]);
    assert_eq!(a.log_head().await.expect("head a"), Some(log_a[1].position));
    assert_eq!(b.log_head().await.expect("head b"), Some(log_b[0].position));

    let ids = a.identities(&[(stream("order-a"), StreamVersion(1)), (stream("order-b"), StreamVersion(1))]).await;
    assert_eq!(ids.expect("identities").iter().map(|i| i.stream_id.as_str()).collect::<Vec<_>>(), ["order-a"]);
    let theirs: Vec<&tidemark::RecordedEvent> = log_b.iter().collect();
    let mismatches = a.verify_events(&theirs).await.expect("verify");
    assert_eq!(mismatches.len(), 1, "another tenant's event is not confirmed");
    assert!(mismatches[0].stored.is_none(), "nor shown");
    let ours: Vec<&tidemark::RecordedEvent> = log_a.iter().collect();
    assert!(a.verify_events(&ours).await.expect("verify own").is_empty());

    assert!(a.command_outcome(command_a).await.expect("own outcome").is_some());
    assert_eq!(a.command_outcome(command_b).await.expect("their outcome"), None);

    // Writing: another tenant named in the metadata, or another tenant's stream, is refused.
    let named = a.append(request("order-a", ExpectedVersion::Any, vec![of(Some("globex"), 3)])).await;
    assert_mismatch(named, Some("acme"), Some("globex"));
    let theirs = a.append(request("order-b", ExpectedVersion::Any, vec![of(None, 2)])).await;
    assert_mismatch(theirs, Some("globex"), Some("acme"));
    assert_eq!(store.stream_version(&stream("order-b")).await.expect("version"), StreamVersion(1), "unchanged");

    // Snapshots follow the stream's tenant.
    let snapshot = |id: &str| Snapshot {
        stream_id: stream(id),
        schema_version: 1,
        stream_version: StreamVersion(1),
        state: serde_json::json!({"n": 1}),
        taken_at: chrono::Utc::now(),
    };
    b.save_snapshot(snapshot("order-b")).await.expect("own snapshot");
    assert!(b.load_snapshot(&stream("order-b")).await.expect("load own").is_some());
    assert_eq!(a.load_snapshot(&stream("order-b")).await.expect("load theirs"), None);
    match a.save_snapshot(snapshot("order-b")).await {
        Err(Error::TenantMismatch { stream_tenant, .. }) => assert_eq!(stream_tenant.as_deref(), Some("globex")),
        other => panic!("expected a tenant mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tenant_view_learns_nothing_of_another_tenants_stream_from_a_refused_append() {
    for group_commit in [false, true] {
        let schema = TestSchema::new().await;
        let store = with_config(&schema, group_commit).await;
        let (a, b) = (store.for_tenant("acme").expect("a"), store.for_tenant("globex").expect("b"));
        let command_b = CommandId::new();
        b.append(
            request("order-b", ExpectedVersion::NoStream, vec![of(None, 1), of(None, 2)]).with_command_id(command_b),
        )
        .await
        .expect("globex's stream");
        b.append(request("gone-b", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("globex's other");
        b.tombstone(&stream("gone-b"), ExpectedVersion::Exact(StreamVersion(1))).await.expect("tombstone");

        // Stale or wrong versions on globex's stream: refused as globex's, never a conflict
        // that would tell acme the stream's version.
        for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(StreamVersion(1))] {
            let stale = a.append(request("order-b", expected, vec![of(None, 9)])).await;
            assert_mismatch(stale, Some("globex"), Some("acme"));
        }
        // A deleted stream of globex's: refused as globex's, not reported as deleted.
        for expected in [ExpectedVersion::Any, ExpectedVersion::Exact(StreamVersion(2))] {
            let deleted = a.append(request("gone-b", expected, vec![of(None, 9)])).await;
            assert_mismatch(deleted, Some("globex"), Some("acme"));
        }
        // globex's command id replayed by acme, on acme's own stream or on globex's:
        // refused, never globex's outcome.
        for target in ["order-a", "order-b"] {
            let replay =
                a.append(request(target, ExpectedVersion::Any, vec![of(None, 9)]).with_command_id(command_b)).await;
            assert_mismatch(replay, Some("globex"), Some("acme"));
        }

        // Nothing was written, and acme's own errors are still its own.
        assert_eq!(store.stream_version(&stream("order-a")).await.expect("version"), StreamVersion(0));
        assert_eq!(store.stream_version(&stream("order-b")).await.expect("version"), StreamVersion(2));
        a.append(request("order-a", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("acme's stream");
        match a.append(request("order-a", ExpectedVersion::NoStream, vec![of(None, 2)])).await {
            Err(Error::Conflict { actual, .. }) => assert_eq!(actual, StreamVersion(1)),
            other => panic!("group commit {group_commit}: expected acme's own conflict, got {other:?}"),
        }
        let replayed = b
            .append(request("order-b", ExpectedVersion::Any, vec![of(None, 9)]).with_command_id(command_b))
            .await
            .expect("globex's own replay");
        assert!(replayed.duplicate && replayed.version == StreamVersion(2), "{replayed:?}");
    }
}

#[tokio::test]
async fn a_tenant_view_waits_for_its_own_events_only() {
    let schema = TestSchema::new().await;
    let store = with_config(&schema, false).await;
    let (a, b) = (store.for_tenant("acme").expect("a"), store.for_tenant("globex").expect("b"));
    let start = a.log_head().await.expect("head").unwrap_or(LogPosition::START);
    b.append(request("order-b", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("b");
    support::log_of(&store, 1).await;
    assert!(!a.wait_for_log(start, Duration::from_millis(300)).await.expect("wait"), "b's event does not wake a");
    a.append(request("order-a", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("a");
    assert!(a.wait_for_log(start, Duration::from_secs(30)).await.expect("wait"), "a's own event does");
}

#[tokio::test]
async fn tenant_names_are_checked() {
    let schema = TestSchema::new().await;
    let store = with_config(&schema, false).await;
    for bad in ["", "a b", "a'b", "ünï", &"x".repeat(65), "a\0"] {
        assert!(matches!(store.for_tenant(bad), Err(SetupError::InvalidTenant(_))), "{bad:?} is refused");
    }
    assert!(store.for_tenant("tenant-1.eu_west").is_ok());
}

/// A role that neither owns the tables nor is a superuser, for the row-level security
/// tests; dropped by `drop_role`.
async fn restricted_role(schema: &TestSchema) -> String {
    let role = unique_name("tm_rls").to_lowercase().replace('-', "_");
    let s = schema.name();
    for sql in [
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("GRANT USAGE ON SCHEMA \"{s}\" TO \"{role}\""),
        format!("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA \"{s}\" TO \"{role}\""),
        format!("GRANT UPDATE ON \"{s}\".snapshots TO \"{role}\""),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA \"{s}\" TO \"{role}\""),
    ] {
        sqlx::query(&sql).execute(schema.pool()).await.expect("role set-up");
    }
    role
}

async fn drop_role(schema: &TestSchema, role: &str) {
    sqlx::query(&format!("DROP OWNED BY \"{role}\"")).execute(schema.pool()).await.expect("drop owned");
    sqlx::query(&format!("DROP ROLE \"{role}\"")).execute(schema.pool()).await.expect("drop role");
}

/// A store connected as `role`, with `tidemark.tenant` set for its sessions (or not).
async fn store_as(schema: &TestSchema, role: &str, tenant: Option<&str>) -> PgEventStore {
    store_as_with(schema, role, tenant, true).await
}

async fn store_as_with(schema: &TestSchema, role: &str, tenant: Option<&str>, group_commit: bool) -> PgEventStore {
    let mut options = PgConnectOptions::from_str(schema.url()).expect("url").username(role);
    if let Some(t) = tenant {
        options = options.options([("tidemark.tenant", t)]);
    }
    let pool = PgPoolOptions::new().max_connections(2).connect_with(options).await.expect("connect as role");
    let config = PgStoreConfig::default()
        .schema(schema.name())
        .poll_interval(Duration::from_millis(10))
        .group_commit(group_commit);
    PgEventStore::from_pool(pool, config).expect("store")
}

#[tokio::test]
async fn row_level_security_limits_a_restricted_role_to_its_tenant() {
    let schema = TestSchema::new().await;
    let owner = with_config(&schema, false).await;
    owner.append(request("order-a", ExpectedVersion::NoStream, vec![of(Some("acme"), 1)])).await.expect("a");
    owner.append(request("order-b", ExpectedVersion::NoStream, vec![of(Some("globex"), 1)])).await.expect("b");
    owner.append(request("plain", ExpectedVersion::NoStream, vec![of(None, 1)])).await.expect("plain");
    support::log_of(&owner, 3).await;
    let role = restricted_role(&schema).await;

    let acme = store_as(&schema, &role, Some("acme")).await;
    let log = acme.read_log(LogPosition::START, 100).await.expect("log as acme");
    assert_eq!(log.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["order-a"], "only acme's events");
    assert!(acme.read_stream(&stream("order-b"), StreamVersion(1), 10).await.expect("read").is_empty());
    acme.append(request("order-a", ExpectedVersion::Exact(StreamVersion(1)), vec![of(Some("acme"), 2)]))
        .await
        .expect("acme writes its own stream");
    // Writing another tenant's events, or its stream, is refused by the database.
    let forged = acme.append(request("forged", ExpectedVersion::NoStream, vec![of(Some("globex"), 1)])).await;
    match forged {
        Err(Error::Backend(e)) => {
            let db = e.source.downcast_ref::<sqlx::Error>().and_then(|s| s.as_database_error()).map(|d| d.code());
            assert_eq!(db.flatten().as_deref(), Some("42501"), "a row-level security violation: {e}");
        }
        other => panic!("expected the policy to refuse the row, got {other:?}"),
    }
    // The stream's tenant is not named to a role that may not see it.
    let into_theirs = acme.append(request("order-b", ExpectedVersion::Any, vec![of(Some("acme"), 2)])).await;
    assert_mismatch(into_theirs, None, Some("acme"));
    // Also by the statements without group commit: the stream reads as empty to acme, so
    // the version its append took is another tenant's.
    let lean = store_as_with(&schema, &role, Some("acme"), false).await;
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any, ExpectedVersion::Exact(StreamVersion(0))] {
        let into_theirs =
            lean.append(request("order-b", expected, vec![of(Some("acme"), 2), of(Some("acme"), 3)])).await;
        assert_mismatch(into_theirs, None, Some("acme"));
    }
    lean.pool().close().await;
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\".events", schema.name()))
        .fetch_one(acme.pool())
        .await
        .expect("count");
    assert_eq!(count, 2, "acme's two events, nothing else");
    acme.pool().close().await;

    // Without the setting, a restricted role sees nothing.
    let unset = store_as(&schema, &role, None).await;
    assert!(unset.read_log(LogPosition::START, 100).await.expect("log unset").is_empty());
    assert_eq!(unset.log_head().await.expect("head"), None);
    unset.pool().close().await;

    // The owner still sees every event.
    assert_eq!(support::log_of(&owner, 4).await.len(), 4);
    drop_role(&schema, &role).await;
}

#[tokio::test]
async fn a_restricted_role_reads_only_its_tenants_archived_events() {
    let schema = TestSchema::new().await;
    let owner = with_config(&schema, false).await;
    for (id, tenant) in [("order-a", "acme"), ("order-b", "globex")] {
        let events = vec![of(Some(tenant), 1), of(Some(tenant), 2)];
        owner.append(request(id, ExpectedVersion::NoStream, events)).await.expect("append");
        // The tombstone carries no tenant: it takes its stream's.
        owner.tombstone(&stream(id), ExpectedVersion::Exact(StreamVersion(2))).await.expect("tombstone");
    }
    support::log_of(&owner, 6).await;
    let policy = tidemark_postgres::ArchivePolicy::default().older_than(Duration::ZERO).relayed_only(false);
    let report = owner.archive(&policy).await.expect("archive");
    assert_eq!(report.events, 4, "both streams' events moved, their tombstones stayed: {report:?}");
    let role = restricted_role(&schema).await;

    let acme = store_as(&schema, &role, Some("acme")).await;
    let archived: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT stream_id FROM \"{}\".archived_events ORDER BY stream_version",
        schema.name()
    ))
    .fetch_all(acme.pool())
    .await
    .expect("archived rows as acme");
    assert_eq!(archived, ["order-a", "order-a"], "only acme's archived events");
    let log = acme.read_log(LogPosition::START, 100).await.expect("log as acme");
    assert!(log.iter().all(|e| e.stream_id.as_str() == "order-a"), "the log through both tables: {log:?}");
    assert_eq!(log.len(), 3, "acme's two archived events and its tombstone");
    assert_eq!(log[2].metadata.tenant.as_deref(), Some("acme"), "the tombstone took its stream's tenant");
    // A restricted role's append to its deleted stream is refused as deleted.
    let late = acme.append(request("order-a", ExpectedVersion::Any, vec![of(Some("acme"), 4)])).await;
    assert!(matches!(late, Err(Error::StreamDeleted { .. })), "expected StreamDeleted, got {late:?}");
    acme.pool().close().await;
    drop_role(&schema, &role).await;
}

#[tokio::test]
async fn a_tenants_log_is_read_through_its_index() {
    let schema = TestSchema::new().await;
    let store = with_config(&schema, false).await;
    // Many events of one tenant, a few of another, analysed.
    let seed = format!(
        "INSERT INTO \"{0}\".events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
         SELECT gen_random_uuid(), 'seed-' || i, 1, 'Ticked', 1, '{{}}', \
           jsonb_build_object('tenant', CASE WHEN i % 1000 = 0 THEN 'acme' ELSE 'globex' END) \
         FROM generate_series(1, 50000) AS i",
        schema.name()
    );
    sqlx::query(&seed).execute(schema.pool()).await.expect("seed");
    sqlx::query(&format!("ANALYZE \"{}\".events", schema.name())).execute(schema.pool()).await.expect("analyze");
    let scans = || async {
        let sql = "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_indexes \
                   WHERE schemaname = $1 AND indexrelname = 'events_tenant_log_idx'";
        let n: i64 = sqlx::query_scalar(sql).bind(schema.name()).fetch_one(schema.pool()).await.expect("stats");
        n
    };
    let before = scans().await;
    let acme = store.for_tenant("acme").expect("view");
    support::log_of(&store, 50_000).await;
    let log = acme.read_log(LogPosition::START, 100).await.expect("read");
    assert_eq!(log.len(), 50, "acme's 50 events, in one page");
    assert!(log.iter().all(|e| e.metadata.tenant.as_deref() == Some("acme")));
    // Statistics reach other sessions within a second or so of the reading transaction's end.
    tidemark_testkit::wait_until("the tenant index to be scanned", Duration::from_secs(30), || async {
        sqlx::query("SELECT pg_stat_clear_snapshot()").execute(schema.pool()).await.expect("clear");
        scans().await > before
    })
    .await;
}

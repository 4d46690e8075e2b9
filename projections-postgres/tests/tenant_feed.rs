//! A projection run per tenant on `PgLogFeed::of_tenant`: it applies every event of its
//! tenant's streams, in stream order, and nothing of another tenant's, while both
//! tenants write at once; checked against the events table by plain SQL.

mod support;

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use futures_util::StreamExt;
use tidemark::{AppendRequest, EventStore, ExpectedVersion, StreamId};
use tidemark_postgres::PgTenantStore;
use tidemark_projections::{ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgLogFeed;

use support::nats::{spawn_runner, Bench};
use support::{events, tallies, wait_until, TallyProjection};

fn account(tenant: &str, n: usize) -> StreamId {
    StreamId::for_entity(&format!("{tenant}account"), n).expect("stream id")
}

/// `rounds` appends of 3 events to each of 6 streams of the view's tenant.
async fn write(view: &PgTenantStore, rounds: usize) {
    for round in 0..rounds {
        let appends = futures_util::stream::iter(0..6).map(|n| async move {
            let request = AppendRequest::new(account(view.tenant(), n), ExpectedVersion::Any, events(n, round * 3, 3));
            view.append(request).await.expect("append");
        });
        appends.buffer_unordered(4).collect::<Vec<()>>().await;
    }
}

/// Per stream of `tenant`: (events the tally counts, balance, last version), folded in SQL.
async fn folded(bench: &Bench, tenant: &str) -> BTreeMap<String, (u64, i64, u64)> {
    let sql = format!(
        "SELECT stream_id, \
           count(*) FILTER (WHERE event_type IN ('Deposited', 'Withdrawn')), \
           coalesce(sum(CASE event_type WHEN 'Deposited' THEN (payload->>'amount')::bigint \
                                        WHEN 'Withdrawn' THEN -(payload->>'amount')::bigint END), 0)::bigint, \
           max(stream_version) FILTER (WHERE event_type IN ('Deposited', 'Withdrawn')) \
         FROM \"{}\".events WHERE metadata->>'tenant' = $1 GROUP BY stream_id",
        bench.schema.name()
    );
    let rows: Vec<(String, i64, i64, Option<i64>)> =
        sqlx::query_as(&sql).bind(tenant).fetch_all(bench.schema.pool()).await.expect("fold");
    rows.into_iter()
        .map(|(stream, events, balance, version)| {
            (stream, (events.unsigned_abs(), balance, version.unwrap_or(0).unsigned_abs()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_on_a_tenants_feed_applies_that_tenants_events_and_no_others() -> Result<(), Box<dyn Error>> {
    let bench = Bench::new(2).await;
    let (store, read_models) = (bench.store.clone(), bench.read_models.clone());
    let config = RunnerConfig::default().backoff(Duration::from_millis(20), Duration::from_millis(200));
    // ANCHOR: runner
    let acme = store.for_tenant("acme")?;
    let runner = ProjectionRunner::new(
        TallyProjection::new("acme-tally"),
        read_models.clone(),
        acme.clone(),
        PgLogFeed::of_tenant(acme.clone(), 2)?,
        config,
    )?;
    // ANCHOR_END: runner
    runner.set_up().await?;
    let globex = store.for_tenant("globex")?;
    let (stop, task) = spawn_runner(&runner);

    // Both tenants write at once, before and while the runner runs.
    write(&globex, 2).await;
    tokio::join!(write(&acme, 4), write(&globex, 4));
    let expected = folded(&bench, "acme").await;
    assert_eq!(expected.len(), 6, "acme's six streams");
    assert_eq!(folded(&bench, "globex").await.len(), 6, "and globex's six");

    let projection = TallyProjection::new("acme-tally");
    let read = || async {
        let found = tallies(&bench.read_models, &projection).await;
        found.into_iter().map(|(k, t)| (k, (t.events, t.balance, t.version))).collect::<BTreeMap<_, _>>()
    };
    wait_until("the runner has applied acme's events", || async { read().await == expected }).await;
    // The tally refuses a version applied twice or out of order, so no letter means every
    // event of acme's came once, in stream order.
    assert!(runner.dead_letters().await.expect("letters").is_empty(), "nothing parked");
    let status = runner.status();
    assert_eq!(status.totals.applied, expected.values().map(|(n, _, _)| n).sum::<u64>(), "{status:?}");

    // More of globex's events change nothing; acme's next one arrives.
    write(&globex, 1).await;
    write(&acme, 1).await;
    let expected = folded(&bench, "acme").await;
    wait_until("acme's next events are applied", || async { read().await == expected }).await;
    assert!(read().await.keys().all(|k| k.starts_with("acmeaccount-")), "no stream of globex's");
    stop.cancel();
    task.await.expect("joined").expect("clean stop");
    Ok(())
}

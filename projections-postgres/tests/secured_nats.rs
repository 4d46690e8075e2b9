//! The relay publishes and a `JetStreamFeed` consumes through nats-servers that require
//! credentials and TLS, with clients made by `NatsConnect`: the read model equals a fresh
//! replay of the log. A client with wrong credentials is refused before anything starts.

mod support;

use std::time::Duration;

use tidemark_nats::{NatsConnect, NatsConnectError, RelayConfig, StreamSettings, SubjectScheme};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::{unique_name, NatsSecurity, NatsServer, TestSchema};

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{append_rounds, read_log, replay, tallies};

/// A bench whose NATS client is `client` (connected to a private server).
async fn bench(client: async_nats::Client) -> Bench {
    support::logs();
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name()).poll_interval(Duration::from_millis(20));
    let store = PgEventStore::from_pool(schema.pool().clone(), config).expect("store");
    store.migrate().await.expect("migrate");
    let read_models = PgReadModels::new(&store);
    read_models.migrate().await.expect("projection migrations");
    let name = unique_name("secure");
    let scheme = SubjectScheme::new(format!("t.{}", name.to_lowercase()), 2).expect("scheme");
    let settings = StreamSettings::new(name).max_age(Duration::from_secs(600));
    let key = tidemark_nats::MessageKey::load(&store).await.expect("message key");
    Bench { schema, store, read_models, client, scheme, settings, key }
}

/// Appends, relays and projects through `client`; checks the read model against a replay.
async fn relay_and_project(client: async_nats::Client) {
    let bench = bench(client).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let runner = bench.runner("tally", bench.feed()).await;
    let (stop_runner, runner_task) = spawn_runner(&runner);
    let outcomes = append_rounds(&bench.store, 6, 2, 3).await;
    for outcome in &outcomes {
        runner.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    assert_eq!(log.len(), 6 * 2 * 3);
    assert_eq!(tallies(&bench.read_models, runner.projection()).await, replay(&log));
    assert_eq!(relay.status().published, log.len() as u64, "every event went through the secured server");

    stop_runner.cancel();
    runner_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_feed_work_through_user_password_and_tls() {
    let nats = NatsServer::start_secured(NatsSecurity::user_password("orders", "pw-e2e-71d3").tls()).await;
    let ca = nats.tls_files().expect("TLS").ca().to_owned();
    let options = NatsConnect::new(&nats.url()).user_password("orders", "pw-e2e-71d3").ca_file(&ca).require_tls(true);
    relay_and_project(options.connect().await.expect("connect")).await;

    let wrong = NatsConnect::new(&nats.url()).user_password("orders", "pw-wrong").ca_file(&ca);
    let error = wrong.connect().await.expect_err("wrong password");
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "{error:?}");
    let error = NatsConnect::new(&nats.url()).user_password("orders", "pw-e2e-71d3").connect().await.unwrap_err();
    assert!(matches!(error, NatsConnectError::Tls { .. }), "without the CA: {error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_feed_work_through_a_token() {
    let nats = NatsServer::start_secured(NatsSecurity::token("tok-e2e-90ab")).await;
    let options = NatsConnect::new(&nats.url()).token("tok-e2e-90ab").name("secured-test");
    relay_and_project(options.connect().await.expect("connect")).await;
    let error = NatsConnect::new(&nats.url()).connect().await.expect_err("no token");
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "{error:?}");
}

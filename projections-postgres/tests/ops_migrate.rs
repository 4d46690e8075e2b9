//! `migrate --check` and `migrate --print-sql` on PostgreSQL, over the store's, the
//! relay's and the read models' migration sets; `migrate` applies them.

mod support;

use tidemark_postgres::{PgEventStore, PgStoreConfig, RELAY_MIGRATIONS, STORE_MIGRATIONS};
use tidemark_projections::{Ops, OpsExit};
use tidemark_projections_postgres::{PgReadModels, PROJECTION_MIGRATIONS};
use tidemark_testkit::TestSchema;

use support::deployment::{json, run};

#[tokio::test]
async fn migrate_check_lists_what_is_pending_and_print_sql_prints_it_without_applying() {
    let schema = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(schema.name());
    let store = PgEventStore::from_pool(schema.pool().clone(), config.clone()).expect("store");
    let read_models = PgReadModels::from_pool(schema.pool().clone(), &config).expect("read models");
    let ops = Ops::new(store.clone()).migrations(read_models.clone()).non_interactive();
    store.migrate().await.expect("the store's and the relay's sets only");

    let (exit, out, err) = run(&ops, &["migrate", "--check"]).await;
    assert_eq!((exit, exit.code()), (OpsExit::Problems, 1), "{err}");
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(listed.len(), PROJECTION_MIGRATIONS.versions().count(), "{out}");
    assert!(listed.iter().all(|l| l.starts_with("pending  projections")), "{out}");
    assert!(out.contains("3001  projection pauses"), "{out}");

    let (exit, out, _) = run(&ops, &["migrate", "--check", "--json"]).await;
    assert_eq!(exit, OpsExit::Problems);
    let first = json(out.lines().next().expect("a line"));
    assert_eq!((first["set"].as_str(), first["version"].as_i64()), (Some("projections"), Some(3)), "{out}");

    let (exit, out, _) = run(&ops, &["migrate", "--print-sql"]).await;
    assert_eq!(exit, OpsExit::Done);
    assert!(out.starts_with("-- projections 3 projections\n"), "{out}");
    assert!(out.contains("-- projections 3001 projection pauses\n") && out.contains("CREATE TABLE projection_pauses"));
    let (_, out, _) = run(&ops, &["migrate", "--print-sql", "--json"]).await;
    let last = json(out.lines().last().expect("a line"));
    assert!(last["sql"].as_str().is_some_and(|sql| sql.contains("projection_pauses")), "{out}");
    let (exit, _, _) = run(&ops, &["migrate", "--check"]).await;
    assert_eq!(exit, OpsExit::Problems, "printing applied nothing");

    let (exit, out, err) = run(&ops, &["migrate"]).await;
    assert_eq!(exit, OpsExit::Done, "{err}");
    assert_eq!(out, format!("applied {} migrations\n", PROJECTION_MIGRATIONS.versions().count()));
    let (exit, out, _) = run(&ops, &["migrate", "--check"]).await;
    assert_eq!((exit, out.as_str()), (OpsExit::Done, "up to date: no pending migrations\n"));
    let (_, out, _) = run(&ops, &["migrate", "--check", "--json"]).await;
    assert_eq!(out, "", "nothing pending, nothing listed");

    let fresh = TestSchema::new().await;
    let config = PgStoreConfig::default().schema(fresh.name());
    let read_models = PgReadModels::from_pool(fresh.pool().clone(), &config).expect("read models");
    let ops = Ops::new(store).migrations(read_models).non_interactive();
    let (_, out, _) = run(&ops, &["migrate", "--check", "--json"]).await;
    let sets: Vec<String> = out.lines().map(|l| json(l)["set"].as_str().unwrap_or_default().to_owned()).collect();
    let all = STORE_MIGRATIONS.versions().count() + RELAY_MIGRATIONS.versions().count();
    assert_eq!(sets.len(), all + PROJECTION_MIGRATIONS.versions().count(), "{out}");
    assert_eq!(sets.first().map(String::as_str), Some("store"), "the store's set first");
    assert!(sets.contains(&"relay".to_owned()));
}

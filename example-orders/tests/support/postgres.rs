//! The app on PostgreSQL + JetStream for the tests that need it: a fresh schema
//! (`TestSchema`), a unique JetStream stream and subject prefix.

use axum::Router;
use example_orders::auth::TokenKeys;
use example_orders::http::router;
use example_orders::runtime::{start_postgres, PgDeployment, PgOptions, PgOrdersFeed, PgOrdersStore, PgServe, Running};
use tidemark_projections_postgres::PgReadModels;
use tidemark_testkit::{nats_url, unique_name, TestSchema};

/// A running app with everything it was deployed on.
pub(crate) struct Deployed {
    pub running: Running<PgOrdersStore, PgReadModels, PgOrdersFeed>,
    pub deployment: PgDeployment,
    pub router: Router,
    pub schema: TestSchema,
}

/// Migrates a fresh schema and stream, then serves with the relay and every consumer;
/// `import` loads the v1 fixture first.
pub(crate) async fn deploy(import: bool) -> Deployed {
    let schema = TestSchema::new().await;
    let stream = unique_name("ORDERS");
    let options = PgOptions::new(schema.url())
        .schema(schema.name())
        .nats_url(nats_url().await)
        .stream(&stream, format!("t.{}", stream.to_lowercase()))
        .connections(4, 6);
    let deployment = PgDeployment::connect(options).await.expect("PostgreSQL and NATS");
    deployment.migrate().await.expect("migrate");
    let mut serve = PgServe::new(TokenKeys::dev());
    serve.import_fixture = import;
    let running = start_postgres(&deployment, serve).await.expect("the app starts");
    let router = router(running.app.clone());
    Deployed { running, deployment, router, schema }
}

impl Deployed {
    /// Stops the app (no background task may have failed) and deletes the stream and the
    /// summary bucket.
    pub(crate) async fn stop(self) {
        self.running.join().await.expect("every background task ran until shutdown");
        let jetstream = async_nats::jetstream::new(self.deployment.client.clone().expect("NATS"));
        jetstream.delete_stream(&self.deployment.options.stream).await.expect("delete the stream");
        let bucket = self.deployment.options.summary_bucket();
        jetstream.delete_key_value(&bucket).await.expect("delete the summary bucket");
        drop(self.schema);
    }
}

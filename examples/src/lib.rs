//! What the examples share: where the services are, and names of their own.
//!
//! Every example works in a schema and (with NATS) a JetStream stream named for it with a
//! random suffix, and removes them when it ends, so the examples can run side by side and
//! again on the same services. An application uses fixed names instead.

use sqlx::PgPool;

/// The examples' error type: they report any failure and stop.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `DATABASE_URL`, or the README's local PostgreSQL.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `NATS_URL`, or the README's local nats-server.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// `prefix`, `_` and twelve random hex digits: a schema, stream or subject token no other
/// run uses.
pub fn unique(prefix: &str) -> String {
    let mut hex = uuid::Uuid::new_v4().simple().to_string();
    hex.truncate(12);
    format!("{prefix}_{hex}")
}

/// Drops `schema` and every schema named `<schema>_…` (where the projections' own tables
/// live), with everything in them.
pub async fn drop_schemas(pool: &PgPool, schema: &str) -> Result<(), sqlx::Error> {
    let pattern = format!("{}\\_%", schema.replace('_', "\\_"));
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2")
            .bind(schema)
            .bind(pattern)
            .fetch_all(pool)
            .await?;
    for name in names {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).execute(pool).await?;
    }
    Ok(())
}

/// Deletes a JetStream stream.
pub async fn delete_stream(client: &async_nats::Client, stream: &str) -> Result<(), BoxError> {
    async_nats::jetstream::new(client.clone()).delete_stream(stream).await?;
    Ok(())
}

/// An example's `main`, which runs the example's `async fn run()` on a Tokio runtime, and a
/// test that runs it too, so `cargo test` runs every example.
#[macro_export]
macro_rules! example_main {
    ($run:ident) => {
        #[tokio::main]
        async fn main() -> Result<(), $crate::BoxError> {
            $run().await
        }

        #[cfg(test)]
        mod example_runs {
            #[tokio::test]
            async fn the_example_runs() {
                super::$run().await.expect("the example runs");
            }
        }
    };
}

pub mod account;
pub mod balances;

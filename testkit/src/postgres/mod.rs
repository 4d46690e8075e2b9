//! PostgreSQL: the shared server, per-test schemas and databases, private clusters.

mod admin;
mod cleanup;
mod cluster;
mod database;
mod schema;
mod shared;
mod urls;

pub use cluster::PgCluster;
pub use database::TestDatabase;
pub use schema::TestSchema;
pub use shared::postgres_url;

/// A fresh lowercase schema or database name: `tm_t_<12 hex digits>`.
fn random_name() -> String {
    format!("tm_t_{}", crate::names::random_hex12())
}

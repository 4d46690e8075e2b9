//! [`postgres_url`]: the one PostgreSQL server all ordinary tests of a process share.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;

use super::admin;
use super::cluster::PgCluster;
use crate::env::{force_throwaway, non_empty, DATABASE_URL};
use crate::install_hint::unavailable;
use crate::net::accepts_tcp;

/// The URL used when something listens on the standard port.
const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The decision, made once per process: a URL, or the message every caller panics with.
static SHARED: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The throwaway server, when one had to be started; it lives until the process exits, when its
/// watchdog shuts it down and deletes its files.
static THROWAWAY: OnceLock<PgCluster> = OnceLock::new();

/// The URL of the PostgreSQL database the tests of this process share.
///
/// In order: `DATABASE_URL` if set; else `postgres://postgres@127.0.0.1:5432/test` if that port
/// accepts connections; else one throwaway server started for the whole process (see
/// [`PgCluster`]), whose database `test` is returned. The choice is made once and reused.
/// Setting `TIDEMARK_TEST_FORCE_THROWAWAY=1` skips the first two.
///
/// Tests should not use the database directly but a [`TestSchema`](crate::TestSchema) or
/// [`TestDatabase`](crate::TestDatabase) inside it.
///
/// # Panics
///
/// Panics, saying what to install or set, when no server is configured, running, or startable.
pub async fn postgres_url() -> String {
    match SHARED.get_or_init(resolve).await {
        Ok(url) => url.clone(),
        Err(message) => panic!("{message}"),
    }
}

async fn resolve() -> Result<String, String> {
    if !force_throwaway() {
        if let Some(url) = non_empty(DATABASE_URL) {
            return Ok(url);
        }
        if accepts_tcp(5432, Duration::from_secs(1)).await {
            return Ok(LOCAL_URL.to_owned());
        }
    }
    start_throwaway().await.map_err(|reason| unavailable("PostgreSQL", DATABASE_URL, 5432, &reason))
}

async fn start_throwaway() -> Result<String, String> {
    let cluster = PgCluster::try_start().await?;
    admin::execute(&cluster.url(), &["CREATE DATABASE test".to_owned()])
        .await
        .map_err(|e| format!("cannot create database test: {e}"))?;
    let url = cluster.url_for("test");
    // `resolve` runs once per process, so the cell is empty here.
    let _ = THROWAWAY.set(cluster);
    Ok(url)
}

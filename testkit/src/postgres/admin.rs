//! One-off administrative SQL on a connection of its own, with bounded waits.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `url`, bounds lock waits and statements (`lock_timeout` 5 s, `statement_timeout`
/// 20 s), and runs `statements` in order on that one connection.
pub(crate) async fn execute(url: &str, statements: &[String]) -> Result<(), String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| format!("connecting timed out after {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot connect: {e}"))?;
    conn.execute("SET lock_timeout = '5s'; SET statement_timeout = '20s'").await.map_err(|e| e.to_string())?;
    for statement in statements {
        conn.execute(statement.as_str()).await.map_err(|e| format!("{statement}: {e}"))?;
    }
    let _ = conn.close().await;
    Ok(())
}

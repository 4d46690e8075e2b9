//! One readiness check: a dependency reachable, the relay standing, consumers holding
//! partitions. Each answers within [`CHECK_TIMEOUT`].

use std::time::Duration;

use async_nats::connection::State;
use serde::Serialize;
use sqlx::PgPool;
use tidemark_nats::{RelayMonitor, RelayRole};

use crate::runtime::ConsumerStatuses;

/// The longest a dependency check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Something a process needs before it is ready.
#[derive(Clone)]
#[non_exhaustive]
pub enum Check {
    /// PostgreSQL answers `SELECT 1` on this pool.
    Postgres(PgPool),
    /// The NATS client is connected and a flush (a PING round trip) completes.
    Nats(async_nats::Client),
    /// The relay leads or stands by (connected, waiting for the leadership): not starting,
    /// not retrying after a failure, not stopped.
    Relay(RelayMonitor),
    /// Every consumer of the process holds at least one partition of the feed.
    Consumers(ConsumerStatuses),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Which check: `postgres`, `nats`, `relay` or `consumers`.
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found: on a failure, why.
    pub detail: String,
}

impl Check {
    /// The check's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Nats(_) => "nats",
            Self::Relay(_) => "relay",
            Self::Consumers(_) => "consumers",
        }
    }

    /// Runs the check.
    pub async fn run(&self) -> Outcome {
        let result = match self {
            Self::Postgres(pool) => postgres(pool).await,
            Self::Nats(client) => nats(client).await,
            Self::Relay(monitor) => relay(monitor),
            Self::Consumers(statuses) => consumers(statuses),
        };
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        Outcome { check: self.name(), ok, detail }
    }
}

async fn postgres(pool: &PgPool) -> Result<String, String> {
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok("reachable".to_owned()),
        Ok(Err(error)) => Err(format!("PostgreSQL is unreachable: {error}")),
        Err(_) => Err(format!("PostgreSQL did not answer within {CHECK_TIMEOUT:?}")),
    }
}

async fn nats(client: &async_nats::Client) -> Result<String, String> {
    let state = client.connection_state();
    if state != State::Connected {
        return Err(format!("NATS is unreachable: the connection is {state}"));
    }
    match tokio::time::timeout(CHECK_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => Ok("connected".to_owned()),
        Ok(Err(error)) => Err(format!("NATS is unreachable: {error}")),
        Err(_) => Err(format!("NATS did not answer a ping within {CHECK_TIMEOUT:?}")),
    }
}

fn relay(monitor: &RelayMonitor) -> Result<String, String> {
    match monitor.status().role {
        RelayRole::Leading => Ok("leading".to_owned()),
        RelayRole::Standby => Ok("standing by: another relay leads".to_owned()),
        RelayRole::Starting => Err("the relay is starting".to_owned()),
        RelayRole::Retrying => Err("the relay leads but is retrying after a failure".to_owned()),
        RelayRole::Stopped => Err("the relay stopped".to_owned()),
        other => Err(format!("the relay is {other:?}")),
    }
}

fn consumers(statuses: &ConsumerStatuses) -> Result<String, String> {
    let statuses = statuses();
    let idle: Vec<String> = statuses
        .iter()
        .filter(|(_, status)| status.partitions.is_empty())
        .map(|(name, status)| match &status.last_error {
            Some(error) => format!("{name} ({error})"),
            None => name.clone(),
        })
        .collect();
    if idle.is_empty() {
        let held: Vec<String> = statuses.iter().map(|(name, s)| format!("{name} {:?}", s.partitions)).collect();
        Ok(format!("partitions held: {}", held.join(", ")))
    } else {
        Err(format!("holding no partition: {}", idle.join(", ")))
    }
}

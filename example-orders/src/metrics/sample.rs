//! Gauges sampled on a timer: the connection pools, and the lag of the projections this
//! process does not run (measured from the database, so that it keeps moving while the
//! processes running them are dead or stalled).

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Parked dead letters of a projection, sampled from the database.
pub const DEAD_LETTERS: &str = "orders_dead_letters";
/// Connections open in a pool (`pool` = `store` or `read_models`), in use or idle.
pub const POOL_CONNECTIONS: &str = "orders_pool_connections";
/// Idle connections of a pool.
pub const POOL_IDLE_CONNECTIONS: &str = "orders_pool_idle_connections";
/// The most connections a pool opens.
pub const POOL_MAX_CONNECTIONS: &str = "orders_pool_max_connections";

pub(super) fn describe() {
    use metrics::{describe_gauge, Unit};
    describe_gauge!(POOL_CONNECTIONS, Unit::Count, "Connections open in a PostgreSQL pool (in use or idle), sampled");
    describe_gauge!(POOL_IDLE_CONNECTIONS, Unit::Count, "Idle connections of a PostgreSQL pool, sampled");
    describe_gauge!(DEAD_LETTERS, Unit::Count, "Parked dead letters of a projection, sampled from the database");
    describe_gauge!(POOL_MAX_CONNECTIONS, Unit::Count, "The most connections a PostgreSQL pool opens");
}

/// Sets the pool gauges of `pools` (name, pool) every `every` until `stop`.
pub async fn sample_pools(pools: Vec<(&'static str, PgPool)>, every: Duration, stop: CancellationToken) {
    loop {
        for (name, pool) in &pools {
            let open = pool.size();
            metrics::gauge!(POOL_CONNECTIONS, "pool" => *name).set(f64::from(open));
            metrics::gauge!(POOL_IDLE_CONNECTIONS, "pool" => *name).set(pool.num_idle() as f64);
            metrics::gauge!(POOL_MAX_CONNECTIONS, "pool" => *name).set(f64::from(pool.options().get_max_connections()));
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Runs `measure` (which exports the lag gauges of the projections this process does not
/// run) every `every` until `stop`.
pub async fn sample_lag<M, Fut>(mut measure: M, every: Duration, stop: CancellationToken)
where
    M: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        measure().await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

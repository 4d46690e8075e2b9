//! F4's read model: per account, the events applied, the last version and the balance,
//! written by one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE` per batch. The
//! framework's projection and the raw baseline write the same rows with the same statement.

use std::collections::HashMap;

use anyhow::{ensure, Result};
use sqlx::{PgExecutor, PgPool};
use tidemark::{Envelope, EventCodec};
use tidemark_projections::{ApplyError, Projection};
use tidemark_projections_postgres::{PgReadModels, PgTx};

use crate::db::ADMIN;
use crate::domain::AccountEvent;

/// The read model's table, unqualified (a projection's tables live in its own schema).
pub(crate) const TABLE: &str = "account_totals";

/// Creates the read model's table `table` (qualified or not).
pub(crate) fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (stream_id text PRIMARY KEY, events bigint NOT NULL, \
         last_version bigint NOT NULL, balance_cents bigint NOT NULL)"
    )
}

/// The upsert of one batch's rows (one per account) into `table`.
pub(crate) fn upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} AS t (stream_id, events, last_version, balance_cents) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) \
         ON CONFLICT (stream_id) DO UPDATE SET events = t.events + EXCLUDED.events, \
           last_version = GREATEST(t.last_version, EXCLUDED.last_version), \
           balance_cents = t.balance_cents + EXCLUDED.balance_cents"
    )
}

/// One batch's rows: events of the same account are summed into one row (an upsert may
/// not touch a row twice).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    index: HashMap<String, usize>,
    ids: Vec<String>,
    events: Vec<i64>,
    versions: Vec<i64>,
    balances: Vec<i64>,
}

impl Rows {
    pub(crate) fn add(&mut self, stream: &str, version: u64, amount_cents: i64) {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let i = match self.index.get(stream) {
            Some(i) => *i,
            None => {
                self.index.insert(stream.to_owned(), self.ids.len());
                self.ids.push(stream.to_owned());
                self.events.push(0);
                self.versions.push(0);
                self.balances.push(0);
                self.ids.len() - 1
            }
        };
        self.events[i] += 1;
        self.versions[i] = self.versions[i].max(version);
        self.balances[i] += amount_cents;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Runs the upsert `sql` (see [`upsert_sql`]) with these rows.
    pub(crate) async fn upsert<'e>(&self, sql: &str, executor: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
        sqlx::query(sql)
            .bind(&self.ids)
            .bind(&self.events)
            .bind(&self.versions)
            .bind(&self.balances)
            .execute(executor)
            .await?;
        Ok(())
    }
}

/// The framework's side: a projection of account events into [`TABLE`].
#[derive(Debug)]
pub(crate) struct TotalsProjection {
    name: String,
    codec: EventCodec<AccountEvent>,
    upsert: String,
    undoable: bool,
}

impl TotalsProjection {
    pub(crate) fn new(name: impl Into<String>) -> Result<Self> {
        let codec = EventCodec::without_upcasters()?;
        Ok(Self { name: name.into(), codec, upsert: upsert_sql(TABLE), undoable: true })
    }

    /// The projection, letting the runner apply batches before their check or not.
    pub(crate) fn undoable(mut self, undoable: bool) -> Self {
        self.undoable = undoable;
        self
    }
}

fn amount(event: &AccountEvent) -> i64 {
    match event {
        AccountEvent::Opened(_) => 0,
        AccountEvent::Deposited(b) => b.amount_cents,
        AccountEvent::Withdrawn(w) => -w.0.amount_cents,
    }
}

impl Projection<PgReadModels> for TotalsProjection {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        &self.name
    }

    fn codec(&self) -> &EventCodec<AccountEvent> {
        &self.codec
    }

    fn undoable(&self) -> bool {
        self.undoable
    }

    async fn setup(&self, tx: &mut PgTx) -> Result<(), ApplyError> {
        sqlx::query(&create_sql(TABLE)).execute(tx.conn()).await?;
        Ok(())
    }

    async fn apply(&self, tx: &mut PgTx, event: &Envelope<AccountEvent>) -> Result<(), ApplyError> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(&self, tx: &mut PgTx, events: &[Envelope<AccountEvent>]) -> Result<(), ApplyError> {
        let mut rows = Rows::default();
        for e in events {
            rows.add(e.stream_id.as_str(), e.stream_version.0, amount(&e.event));
        }
        if !rows.is_empty() {
            rows.upsert(&self.upsert, tx.conn()).await?;
        }
        Ok(())
    }
}

/// Checks (untimed) that `table` holds `streams` accounts of `length` events each, as
/// seeded: one opening and `length - 1` deposits of `deposit` cents.
pub(crate) async fn verify(admin: &PgPool, table: &str, streams: usize, length: usize, deposit: i64) -> Result<()> {
    let sql = format!(
        "{ADMIN} SELECT count(*), coalesce(sum(events), 0)::int8, coalesce(sum(balance_cents), 0)::int8, \
                coalesce(min(last_version), 0), coalesce(max(last_version), 0) FROM {table}"
    );
    let (rows, events, balance, low, high): (i64, i64, i64, i64, i64) = sqlx::query_as(&sql).fetch_one(admin).await?;
    let (n, len) = (streams as i64, length as i64);
    ensure!(
        (rows, events, balance, low, high) == (n, n * len, n * (len - 1) * deposit, len, len),
        "{table}: {rows} accounts, {events} events, balance {balance}, versions {low}..{high}; \
         expected {n} accounts of {len} events"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_one_row_per_account() {
        let mut rows = Rows::default();
        for (stream, version, amount) in [("a", 1, 0), ("b", 4, 100), ("a", 2, 500), ("a", 3, -200)] {
            rows.add(stream, version, amount);
        }
        assert_eq!(rows.ids, ["a", "b"]);
        assert_eq!((rows.events, rows.versions, rows.balances), (vec![3, 1], vec![3, 4], vec![300, 100]));
        assert!(upsert_sql("t").contains("ON CONFLICT (stream_id) DO UPDATE"));
    }
}

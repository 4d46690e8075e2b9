//! Raw baselines: what a hand-written application gets from sqlx and PostgreSQL for
//! the same rows, without any framework.
//!
//! (a) one single-row INSERT per operation, autocommit (one round trip);
//! (b) the same INSERT inside BEGIN … COMMIT (three round trips);
//! (c) one multi-row `INSERT … SELECT FROM unnest(…)` of 100 rows per operation.
//!
//! Rows are event-shaped (a fresh stream id, a UUID v7 event id, a ~250-byte JSON
//! payload serialised per operation, correlation and causation ids), written to tables
//! of the same shape as tidemark's `events` table.

use std::sync::Arc;

use anyhow::Result;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::booking;
use crate::runner::Op;

/// The kind of raw operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawKind {
    /// (a) single-row INSERT, autocommit.
    Autocommit,
    /// (b) single-row INSERT in BEGIN … COMMIT.
    Transaction,
    /// (c) 100-row UNNEST INSERT.
    Unnest(usize),
}

impl RawKind {
    /// The table the kind writes to.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Self::Autocommit => crate::db::RAW_TABLES[0],
            Self::Transaction => crate::db::RAW_TABLES[1],
            Self::Unnest(_) => crate::db::RAW_TABLES[2],
        }
    }

    /// The statement, for a table in `schema`.
    pub(crate) fn sql(self, schema: &str) -> String {
        let t = format!("{schema}.{}", self.table());
        let columns =
            "event_id, stream_id, stream_version, event_type, schema_version, payload, correlation_id, causation_id";
        match self {
            Self::Autocommit | Self::Transaction => {
                format!("INSERT INTO {t} ({columns}) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)")
            }
            Self::Unnest(_) => format!(
                "INSERT INTO {t} ({columns}) \
                 SELECT u.id, $1, u.v, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus \
                 FROM unnest($2::uuid[], $3::int8[], $4::text[], $5::int4[], $6::text[], $7::uuid[], $8::uuid[]) \
                   AS u(id, v, typ, ver, payload, corr, caus)"
            ),
        }
    }
}

/// One writer of a raw baseline.
#[derive(Debug)]
pub(crate) struct RawWriter {
    pool: PgPool,
    sql: Arc<str>,
    kind: RawKind,
    n: u64,
}

impl RawWriter {
    pub(crate) fn new(pool: PgPool, sql: Arc<str>, kind: RawKind, writer: usize) -> Self {
        Self { pool, sql, kind, n: (writer as u64) << 32 }
    }

    async fn single(&mut self) -> Result<u64> {
        self.n += 1;
        let payload = serde_json::to_string(&booking(self.n, 5_000))?;
        let stream = format!("account-{}", Uuid::new_v4().simple());
        let causation = Uuid::now_v7();
        let query = sqlx::query(&self.sql)
            .bind(Uuid::now_v7())
            .bind(&stream)
            .bind(1_i64)
            .bind("MoneyDeposited")
            .bind(1_i32)
            .bind(&payload)
            .bind(causation)
            .bind(causation);
        if self.kind == RawKind::Transaction {
            let mut tx = self.pool.begin().await?;
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        } else {
            query.execute(&self.pool).await?;
        }
        Ok(1)
    }

    async fn unnest(&mut self, rows: usize) -> Result<u64> {
        let stream = format!("account-{}", Uuid::new_v4().simple());
        let causation = Uuid::now_v7();
        let mut payloads = Vec::with_capacity(rows);
        for _ in 0..rows {
            self.n += 1;
            payloads.push(serde_json::to_string(&booking(self.n, 5_000))?);
        }
        let ids: Vec<Uuid> = (0..rows).map(|_| Uuid::now_v7()).collect();
        let versions: Vec<i64> = (1..=rows as i64).collect();
        sqlx::query(&self.sql)
            .bind(&stream)
            .bind(&ids)
            .bind(&versions)
            .bind(vec!["MoneyDeposited"; rows])
            .bind(vec![1_i32; rows])
            .bind(&payloads)
            .bind(vec![causation; rows])
            .bind(vec![causation; rows])
            .execute(&self.pool)
            .await?;
        Ok(rows as u64)
    }
}

impl Op for RawWriter {
    async fn run(&mut self) -> Result<u64> {
        match self.kind {
            RawKind::Unnest(rows) => self.unnest(rows).await,
            _ => self.single().await,
        }
    }
}

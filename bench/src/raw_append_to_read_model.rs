//! F6's raw baseline, hand-written with sqlx and async-nats, no tidemark on the path:
//!
//! insert (one single-row INSERT, autocommit, into a table shaped like `events`) → a
//! notifier task sends `pg_notify` after the commit (one at a time, so bursts coalesce)
//! → a LISTEN-woken reader reads new rows gap-safely (`(transaction_id, position)` keyset
//! below the snapshot's xmin, as any correct reader must) → pipelined JetStream publish
//! with `Nats-Msg-Id`, all PubAcks awaited before the next read → pull consumers
//! (one per partition) → the read model's upsert per batch (`raw_pull_consumers::upsert_loop`, the F4
//! baseline, without acks). No checkpoints are stored: the reader keeps its cursor in memory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use bytes::Bytes;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tidemark::StreamId;
use tidemark_nats::{SubjectScheme, HEADER_EVENT_TYPE, HEADER_MSG_ID, HEADER_STREAM_ID, HEADER_STREAM_VERSION};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::opened;

/// Rows read per query by the raw reader.
const READ_BATCH: i64 = 2000;

/// The writing side: an insert, then a wake-up of the notifier.
#[derive(Debug, Clone)]
pub(crate) struct RawAppender {
    pool: PgPool,
    sql: Arc<str>,
    wake: Arc<Notify>,
}

impl RawAppender {
    /// Inserts into `table` (qualified) through `pool`; `wake` is the notifier's.
    pub(crate) fn new(pool: PgPool, table: &str, wake: Arc<Notify>) -> Self {
        let sql = format!(
            "INSERT INTO {table} (event_id, stream_id, stream_version, event_type, schema_version, payload, \
             correlation_id, causation_id) VALUES ($1, $2, 1, 'AccountOpened', 1, $3::jsonb, $4, $4)"
        );
        Self { pool, sql: sql.into(), wake }
    }

    /// Inserts an `AccountOpened` of a new stream, then wakes the notifier.
    pub(crate) fn append(
        &self,
        stream: String,
        n: u64,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let this = self.clone();
        async move {
            let payload = serde_json::to_string(&opened(n))?;
            let id = Uuid::now_v7();
            sqlx::query(&this.sql).bind(id).bind(&stream).bind(&payload).bind(id).execute(&this.pool).await?;
            this.wake.notify_one();
            Ok(())
        }
    }
}

/// Sends `pg_notify(channel)` after each wake-up, one at a time, until `stop`.
pub(crate) async fn notifier(pool: PgPool, channel: String, wake: Arc<Notify>, stop: CancellationToken) -> Result<()> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = wake.notified() => {}
        }
        sqlx::query("SELECT pg_notify($1, '')").bind(&channel).execute(&pool).await?;
    }
}

/// The reader: woken by `channel` (or every second), reads every new row of `table` and
/// publishes it, until `stop`.
pub(crate) async fn reader(
    pool: PgPool,
    table: String,
    channel: String,
    js: Context,
    scheme: SubjectScheme,
    stop: CancellationToken,
) -> Result<()> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(&channel).await?;
    let sql = format!(
        "SELECT transaction_id AS xid, sequence, event_id, stream_id, stream_version, event_type, \
           payload::text AS payload FROM {table} \
         WHERE (transaction_id, sequence) > ($1, $2) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::int8 \
         ORDER BY transaction_id, sequence LIMIT $3"
    );
    let mut cursor = (0_i64, 0_i64);
    loop {
        loop {
            let rows = sqlx::query(&sql).bind(cursor.0).bind(cursor.1).bind(READ_BATCH).fetch_all(&pool).await?;
            let Some(last) = rows.last() else { break };
            cursor = (last.try_get("xid")?, last.try_get("sequence")?);
            publish(&js, &scheme, &rows).await?;
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            woken = tokio::time::timeout(Duration::from_secs(1), listener.recv()) => {
                if let Ok(notification) = woken {
                    notification?;
                }
            }
        }
    }
}

/// Publishes the rows pipelined, then waits for every PubAck.
async fn publish(js: &Context, scheme: &SubjectScheme, rows: &[sqlx::postgres::PgRow]) -> Result<()> {
    let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.try_get("stream_id")?;
        let event_type: String = row.try_get("event_type")?;
        let version: i64 = row.try_get("stream_version")?;
        let id: Uuid = row.try_get("event_id")?;
        let payload: String = row.try_get("payload")?;
        let subject = scheme.subject(&StreamId::new(stream.as_str())?, &event_type, 1)?;
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, id.to_string().as_str());
        headers.insert(HEADER_STREAM_ID, stream.as_str());
        headers.insert(HEADER_STREAM_VERSION, version.to_string().as_str());
        headers.insert(HEADER_EVENT_TYPE, event_type.as_str());
        acks.push(js.publish_with_headers(subject, headers, Bytes::from(payload)).await.context("raw publish")?);
    }
    for ack in acks {
        ack.await.context("raw publish: PubAck")?;
    }
    Ok(())
}

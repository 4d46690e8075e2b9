//! Reading streams, the global log, heads, command outcomes and snapshots.

use sqlx::Row;
use tidemark::{
    AppendOutcome, CommandId, Error, EventId, EventIdentity, LogPosition, Mismatch, RecordedEvent, Snapshot, StreamId,
    StreamVersion,
};

use crate::error::backend;
use crate::row::{recorded_event, signed, unsigned};
use crate::store::PgEventStore;

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgEventStore {
    pub(crate) async fn stream_page(
        &self,
        stream: &StreamId,
        from: StreamVersion,
        n: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let mut conn = self.warm().await.map_err(backend("reading a stream"))?;
        let rows = sqlx::query(&self.sql().read_stream)
            .bind(stream.as_str())
            .bind(signed(from.0))
            .bind(limit(n))
            .fetch_all(&mut *conn)
            .await
            .map_err(backend("reading a stream"))?;
        conn.keep();
        rows.iter().map(recorded_event).collect()
    }

    /// The identities of the events at these stream versions, in one query.
    pub(crate) async fn identities_at(&self, at: &[(StreamId, StreamVersion)]) -> Result<Vec<EventIdentity>, Error> {
        if at.is_empty() {
            return Ok(Vec::new());
        }
        let streams: Vec<&str> = at.iter().map(|(s, _)| s.as_str()).collect();
        let versions: Vec<i64> = at.iter().map(|(_, v)| signed(v.0)).collect();
        let rows = sqlx::query(&self.sql().identities)
            .bind(streams)
            .bind(versions)
            .fetch_all(self.pool())
            .await
            .map_err(backend("reading event identities"))?;
        rows.iter().map(identity).collect()
    }

    /// The delivered events whose identities differ from the store's, in one query that
    /// compares them where the events are.
    pub(crate) async fn mismatched(&self, events: &[&RecordedEvent]) -> Result<Vec<Mismatch>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = events.len();
        let (mut streams, mut versions, mut ids) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut types, mut schemas) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut transactions, mut positions) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for event in events {
            streams.push(event.stream_id.as_str());
            versions.push(i64::try_from(event.stream_version.0).ok());
            ids.push(event.event_id.0);
            types.push(event.event_type.as_str());
            schemas.push(i32::try_from(event.schema_version).ok());
            transactions.push(i64::try_from(event.position.transaction_id).ok());
            positions.push(i64::try_from(event.position.sequence).ok());
        }
        let rows = sqlx::query(&self.sql().verify_events)
            .bind(streams)
            .bind(versions)
            .bind(ids)
            .bind(types)
            .bind(schemas)
            .bind(transactions)
            .bind(positions)
            .fetch_all(self.pool())
            .await
            .map_err(backend("verifying delivered events"))?;
        rows.iter().map(mismatch).collect()
    }

    pub(crate) async fn log_page(&self, after: LogPosition, n: usize) -> Result<Vec<RecordedEvent>, Error> {
        let mut conn = self.warm().await.map_err(backend("reading the log"))?;
        let rows = sqlx::query(&self.sql().read_log)
            .bind(signed(after.transaction_id))
            .bind(signed(after.sequence))
            .bind(limit(n))
            .fetch_all(&mut *conn)
            .await
            .map_err(backend("reading the log"))?;
        conn.keep();
        rows.iter().map(recorded_event).collect()
    }

    pub(crate) async fn head_of(&self, stream: &StreamId) -> Result<StreamVersion, Error> {
        let v: i64 = sqlx::query_scalar(&self.sql().stream_version)
            .bind(stream.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(backend("reading a stream version"))?;
        Ok(StreamVersion(unsigned(v)))
    }

    /// The stream's version and whether its last event is a tombstone.
    pub(crate) async fn stream_end(&self, stream: &StreamId) -> Result<(StreamVersion, bool), Error> {
        let row: Option<(i64, bool)> = sqlx::query_as(&self.sql().stream_end)
            .bind(stream.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(backend("reading the end of a stream"))?;
        Ok(row.map_or((StreamVersion::EMPTY, false), |(v, deleted)| (StreamVersion(unsigned(v)), deleted)))
    }

    pub(crate) async fn readable_head(&self) -> Result<Option<LogPosition>, Error> {
        let mut conn = self.warm().await.map_err(backend("reading the log head"))?;
        let row = sqlx::query(&self.sql().log_head)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend("reading the log head"))?;
        conn.keep();
        let Some(row) = row else { return Ok(None) };
        let get = backend("decoding the log head");
        let xid: i64 = row.try_get(0).map_err(get)?;
        let sequence: i64 = row.try_get(1).map_err(backend("decoding the log head"))?;
        Ok(Some(LogPosition::new(unsigned(xid), unsigned(sequence))))
    }

    pub(crate) async fn outcome_of(&self, id: CommandId) -> Result<Option<AppendOutcome>, Error> {
        let row = sqlx::query(&self.sql().command_outcome)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await
            .map_err(backend("reading a command outcome"))?;
        let Some(row) = row else { return Ok(None) };
        let decode = |e| backend("decoding a command outcome")(e);
        let stream: String = row.try_get(0).map_err(decode)?;
        let xid: Option<i64> = row.try_get(3).map_err(decode)?;
        let sequence: Option<i64> = row.try_get(4).map_err(decode)?;
        Ok(Some(AppendOutcome {
            stream_id: StreamId::new(stream)?,
            command_id: Some(id),
            previous_version: StreamVersion(unsigned(row.try_get(1).map_err(decode)?)),
            version: StreamVersion(unsigned(row.try_get(2).map_err(decode)?)),
            last_position: xid.zip(sequence).map(|(x, s)| LogPosition::new(unsigned(x), unsigned(s))),
            duplicate: true,
        }))
    }

    pub(crate) async fn snapshot_of(&self, stream: &StreamId) -> Result<Option<Snapshot>, Error> {
        let row = sqlx::query(&self.sql().load_snapshot)
            .bind(stream.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(backend("loading a snapshot"))?;
        let Some(row) = row else { return Ok(None) };
        let decode = |e| backend("decoding a snapshot")(e);
        let schema_version: i32 = row.try_get(1).map_err(decode)?;
        let state: sqlx::types::Json<serde_json::Value> = row.try_get(3).map_err(decode)?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            schema_version: u32::try_from(schema_version).unwrap_or(0),
            stream_version: StreamVersion(unsigned(row.try_get(2).map_err(decode)?)),
            state: state.0,
            taken_at: row.try_get(4).map_err(decode)?,
        }))
    }

    pub(crate) async fn store_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        sqlx::query(&self.sql().save_snapshot)
            .bind(snapshot.stream_id.as_str())
            .bind(i32::try_from(snapshot.schema_version).unwrap_or(i32::MAX))
            .bind(signed(snapshot.stream_version.0))
            .bind(sqlx::types::Json(&snapshot.state))
            .bind(snapshot.taken_at)
            .execute(self.pool())
            .await
            .map_err(backend("saving a snapshot"))?;
        Ok(())
    }
}

pub(crate) fn identity(row: &sqlx::postgres::PgRow) -> Result<EventIdentity, Error> {
    identity_from(row, 0)
}

/// Reads an identity from the row's columns `at..at + 7`: transaction id, position,
/// event id, stream id, stream version, event type and schema version.
fn identity_from(row: &sqlx::postgres::PgRow, at: usize) -> Result<EventIdentity, Error> {
    let get = |e| backend("decoding an event identity")(e);
    let transaction: i64 = row.try_get(at).map_err(get)?;
    let position: i64 = row.try_get(at + 1).map_err(get)?;
    let id: uuid::Uuid = row.try_get(at + 2).map_err(get)?;
    let stream: String = row.try_get(at + 3).map_err(get)?;
    let version: i64 = row.try_get(at + 4).map_err(get)?;
    let schema_version: i32 = row.try_get(at + 6).map_err(get)?;
    Ok(EventIdentity {
        event_id: EventId(id),
        stream_id: StreamId::new(stream)?,
        stream_version: StreamVersion(unsigned(version)),
        position: LogPosition::new(unsigned(transaction), unsigned(position)),
        event_type: row.try_get(at + 5).map_err(get)?,
        schema_version: u32::try_from(schema_version).unwrap_or(0),
    })
}

/// A row of `verify_events`: the claim's 1-based index, then the stored identity's
/// columns as `identity` reads them (all NULL when nothing is stored there).
pub(crate) fn mismatch(row: &sqlx::postgres::PgRow) -> Result<Mismatch, Error> {
    let index: i64 = row.try_get(0).map_err(backend("decoding a mismatch"))?;
    let index =
        usize::try_from(index - 1).map_err(|e| backend("decoding a mismatch")(sqlx::Error::Decode(e.into())))?;
    let stored: Option<uuid::Uuid> = row.try_get(3).map_err(backend("decoding a mismatch"))?;
    let stored = match stored {
        Some(_) => Some(identity_from(row, 1)?),
        None => None,
    };
    Ok(Mismatch::new(index, stored))
}

//! Conversions between rows and tidemark types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use tidemark::{BackendError, Error, EventId, LogPosition, Metadata, NewEvent, RecordedEvent, StreamId, StreamVersion};
use uuid::Uuid;

/// The metadata kept in the `metadata` jsonb column (the ids have columns of their own).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Extras {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

/// A statement with its parameters bound so far.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Column arrays for one `UNNEST` append.
#[derive(Debug, Default)]
pub(crate) struct Columns<'a> {
    pub ids: Vec<Uuid>,
    pub types: Vec<&'a str>,
    pub versions: Vec<i32>,
    pub payloads: Vec<&'a str>,
    pub correlations: Vec<Option<Uuid>>,
    pub causations: Vec<Option<Uuid>>,
    pub extras: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(events: &'a [NewEvent]) -> Result<Self, Error> {
        let mut c = Self::default();
        c.extend(events)?;
        Ok(c)
    }

    /// Binds the seven column arrays to `query`, in the order every append statement takes
    /// them: ids, types, schema versions, payloads, correlations, causations, extras.
    pub(crate) fn bind_to<'q>(&'q self, query: PgQuery<'q>) -> PgQuery<'q> {
        query
            .bind(&self.ids)
            .bind(&self.types)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.correlations)
            .bind(&self.causations)
            .bind(&self.extras)
    }

    /// Adds the columns of more events.
    pub(crate) fn extend(&mut self, events: &'a [NewEvent]) -> Result<(), Error> {
        let c = self;
        for e in events {
            c.ids.push(e.event_id.0);
            c.types.push(&e.event_type);
            c.versions.push(i32::try_from(e.schema_version).unwrap_or(i32::MAX));
            c.payloads.push(e.payload.get());
            c.correlations.push(e.metadata.correlation_id);
            c.causations.push(e.metadata.causation_id);
            c.extras.push(extras_json(&e.metadata)?);
        }
        Ok(())
    }
}

fn extras_json(m: &Metadata) -> Result<Option<String>, Error> {
    if m.extras_are_empty() {
        return Ok(None);
    }
    let extras = Extras { user: m.user.clone(), tenant: m.tenant.clone(), headers: m.headers.clone() };
    serde_json::to_string(&extras)
        .map(Some)
        .map_err(|source| Error::Encode { event_type: "metadata".to_owned(), source })
}

/// Converts a stored signed integer to the unsigned form used by tidemark.
pub(crate) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Converts an unsigned number to a bound parameter, saturating.
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn corrupt(context: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Backend(BackendError::new(context, false, e))
}

/// Reads a row selected with `sql::EVENT_COLUMNS`.
pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, Error> {
    let get = |e: sqlx::Error| corrupt("decoding an event row", e);
    let position = LogPosition::new(unsigned(row.try_get(0).map_err(get)?), unsigned(row.try_get(1).map_err(get)?));
    let stream: String = row.try_get(3).map_err(get)?;
    let stream_id = StreamId::new(stream)?;
    let payload: Json<Box<RawValue>> = row.try_get(7).map_err(get)?;
    let extras: Option<Json<Extras>> = row.try_get(10).map_err(get)?;
    let extras = extras.map(|j| j.0).unwrap_or_default();
    let mut metadata = Metadata::new();
    metadata.correlation_id = row.try_get(8).map_err(get)?;
    metadata.causation_id = row.try_get(9).map_err(get)?;
    metadata.user = extras.user;
    metadata.tenant = extras.tenant;
    metadata.headers = extras.headers;
    let schema_version: i32 = row.try_get(6).map_err(get)?;
    let recorded_at: DateTime<Utc> = row.try_get(11).map_err(get)?;
    Ok(RecordedEvent {
        event_id: EventId(row.try_get(2).map_err(get)?),
        stream_id,
        stream_version: StreamVersion(unsigned(row.try_get(4).map_err(get)?)),
        position,
        event_type: row.try_get(5).map_err(get)?,
        schema_version: u32::try_from(schema_version).unwrap_or(0),
        payload: payload.0,
        metadata,
        recorded_at,
    })
}

//! A tenant's view of the store: reads limited to the tenant's streams, appends stamped
//! with the tenant and refused for anyone else's streams.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tidemark::{
    AppendOutcome, AppendRequest, CommandId, Error, EventIdentity, EventStore, LogPosition, Mismatch, RecordedEvent,
    Snapshot, StreamId, StreamVersion,
};
use tokio::time::Instant;

use crate::error::{backend, SetupError};
use crate::read::{identity, mismatch};
use crate::row::{recorded_event, signed, unsigned};
use crate::store::PgEventStore;
use crate::tenant_sql::TenantStatements;

/// The longest tenant name [`PgEventStore::for_tenant`] accepts, in bytes.
pub const MAX_TENANT_BYTES: usize = 64;

/// The store as one tenant sees it (see [`PgEventStore::for_tenant`]).
///
/// Reads return only the events of streams that belong to the tenant: another tenant's
/// stream reads as empty, at version 0, with no snapshot; the log holds the tenant's
/// events only, in log order (their positions are the global log's, with gaps where
/// other tenants' events are). Appends stamp the tenant on events that carry none and
/// refuse, with [`Error::TenantMismatch`], an event that names another tenant or a
/// stream that belongs to another tenant (or to none). Cloning is cheap.
#[derive(Debug, Clone)]
pub struct PgTenantStore {
    store: PgEventStore,
    tenant: Arc<str>,
    sql: Arc<TenantStatements>,
}

impl PgEventStore {
    /// A view of the store limited to `tenant`'s streams. The tenant must be 1 to
    /// [`MAX_TENANT_BYTES`] ASCII letters, digits, `_`, `-` or `.`; anything else is
    /// refused with [`SetupError::InvalidTenant`]. Needs migration 1004 (applied by
    /// [`PgEventStore::migrate`]).
    pub fn for_tenant(&self, tenant: &str) -> Result<PgTenantStore, SetupError> {
        validate_tenant(tenant)?;
        let sql = TenantStatements::new(&self.config().schema, self.config().gap_safe);
        Ok(PgTenantStore { store: self.clone(), tenant: Arc::from(tenant), sql: Arc::new(sql) })
    }

    /// The error for an append the trigger of migration 1004 refused: the stream's tenant
    /// as stored (or, for a new stream, its first event's) against the first event of the
    /// request that differs from it.
    pub(crate) async fn tenant_mismatch(&self, request: &AppendRequest) -> Result<Error, Error> {
        let stored: Option<Option<String>> = sqlx::query_scalar(&format!(
            "SELECT tenant FROM \"{}\".events WHERE stream_id = $1 AND stream_version = 1",
            self.config().schema
        ))
        .bind(request.stream_id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(backend("reading a stream's tenant"))?;
        let first = request.events.first().and_then(|e| e.metadata.tenant.clone());
        let stream_tenant = match stored {
            Some(tenant) => tenant,
            // Not stored, or hidden from this connection by row-level security (the trigger
            // sees every row): a new stream's tenant is its first event's when the request
            // disagrees with itself; otherwise the stream is there but not ours to name.
            None if request.events.iter().any(|e| e.metadata.tenant != first) => first.clone(),
            None => None,
        };
        let tenant =
            request.events.iter().map(|e| e.metadata.tenant.clone()).find(|t| *t != stream_tenant).unwrap_or(first);
        Ok(Error::TenantMismatch { stream: request.stream_id.clone(), stream_tenant, tenant })
    }
}

/// Checks a tenant name against the rules of [`PgEventStore::for_tenant`].
pub fn validate_tenant(tenant: &str) -> Result<(), SetupError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if tenant.is_empty() || tenant.len() > MAX_TENANT_BYTES || !tenant.chars().all(allowed) {
        return Err(SetupError::InvalidTenant(tenant.to_owned()));
    }
    Ok(())
}

impl PgTenantStore {
    /// The tenant this view is limited to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub(crate) fn statements(&self) -> &TenantStatements {
        &self.sql
    }

    /// The whole store, every tenant's streams included.
    pub fn unscoped(&self) -> &PgEventStore {
        &self.store
    }

    /// The tenant a stream belongs to: `None` when the stream does not exist, `Some(None)`
    /// when it belongs to no tenant. Reads every tenant's streams: for the application's
    /// checks, not to be shown to a tenant.
    pub async fn owner_of(&self, stream: &StreamId) -> Result<Option<Option<String>>, Error> {
        sqlx::query_scalar(&self.sql.stream_tenant)
            .bind(stream.as_str())
            .fetch_optional(self.store.pool())
            .await
            .map_err(backend("reading a stream's tenant"))
    }

    fn refuse(&self, stream: &StreamId, tenant: Option<String>) -> Error {
        Error::TenantMismatch { stream: stream.clone(), stream_tenant: Some(self.tenant.to_string()), tenant }
    }

    /// The refusal for a request on `stream` when `owned` (the stream it touched) exists
    /// and belongs to someone else; `None` when `owned` is this tenant's or does not exist.
    async fn foreign(&self, stream: &StreamId, owned: &StreamId) -> Result<Option<Error>, Error> {
        Ok(match self.owner_of(owned).await? {
            Some(owner) if owner.as_deref() != Some(&*self.tenant) => Some(Error::TenantMismatch {
                stream: stream.clone(),
                stream_tenant: owner,
                tenant: Some(self.tenant.to_string()),
            }),
            _ => None,
        })
    }

    async fn readable_head(&self) -> Result<Option<LogPosition>, Error> {
        let row = sqlx::query(&self.sql.log_head)
            .bind(&*self.tenant)
            .fetch_optional(self.store.pool())
            .await
            .map_err(backend("reading a tenant's log head"))?;
        let Some(row) = row else { return Ok(None) };
        let xid: i64 = row.try_get(0).map_err(backend("decoding the log head"))?;
        let sequence: i64 = row.try_get(1).map_err(backend("decoding the log head"))?;
        Ok(Some(LogPosition::new(unsigned(xid), unsigned(sequence))))
    }
}

impl EventStore for PgTenantStore {
    async fn append(&self, mut request: AppendRequest) -> Result<AppendOutcome, Error> {
        for event in &mut request.events {
            match &event.metadata.tenant {
                None => event.metadata.tenant = Some(self.tenant.to_string()),
                Some(t) if **t == *self.tenant => {}
                Some(other) => return Err(self.refuse(&request.stream_id, Some(other.clone()))),
            }
        }
        if request.events.is_empty() {
            // Nothing for the trigger to check: refuse another tenant's stream here.
            if let Some(owner) = self.owner_of(&request.stream_id).await? {
                if owner.as_deref() != Some(&*self.tenant) {
                    return Err(Error::TenantMismatch {
                        stream: request.stream_id,
                        stream_tenant: owner,
                        tenant: Some(self.tenant.to_string()),
                    });
                }
            }
        }
        let stream = request.stream_id.clone();
        match self.store.append(request).await {
            // A stale version or a tombstone on another tenant's stream would tell this
            // tenant the stream's version: refuse it as the stream's owner's instead.
            Err(error @ (Error::Conflict { .. } | Error::StreamDeleted { .. })) => {
                Err(self.foreign(&stream, &stream).await?.unwrap_or(error))
            }
            // A command id another tenant used answers with that tenant's outcome: refuse it.
            Ok(outcome) if outcome.duplicate => match self.foreign(&stream, &outcome.stream_id).await? {
                Some(refused) => Err(refused),
                None => Ok(outcome),
            },
            other => other,
        }
    }

    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let rows = sqlx::query(&self.sql.read_stream)
            .bind(stream_id.as_str())
            .bind(signed(from.0))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(&*self.tenant)
            .fetch_all(self.store.pool())
            .await
            .map_err(backend("reading a tenant's stream"))?;
        rows.iter().map(recorded_event).collect()
    }

    async fn identities(&self, at: &[(StreamId, StreamVersion)]) -> Result<Vec<EventIdentity>, Error> {
        if at.is_empty() {
            return Ok(Vec::new());
        }
        let streams: Vec<&str> = at.iter().map(|(s, _)| s.as_str()).collect();
        let versions: Vec<i64> = at.iter().map(|(_, v)| signed(v.0)).collect();
        let rows = sqlx::query(&self.sql.identities)
            .bind(streams)
            .bind(versions)
            .bind(&*self.tenant)
            .fetch_all(self.store.pool())
            .await
            .map_err(backend("reading a tenant's event identities"))?;
        rows.iter().map(identity).collect()
    }

    async fn verify_events(&self, events: &[&RecordedEvent]) -> Result<Vec<Mismatch>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        let versions: Vec<Option<i64>> = events.iter().map(|e| i64::try_from(e.stream_version.0).ok()).collect();
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id.0).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schemas: Vec<Option<i32>> = events.iter().map(|e| i32::try_from(e.schema_version).ok()).collect();
        let xids: Vec<Option<i64>> = events.iter().map(|e| i64::try_from(e.position.transaction_id).ok()).collect();
        let sequences: Vec<Option<i64>> = events.iter().map(|e| i64::try_from(e.position.sequence).ok()).collect();
        let rows = sqlx::query(&self.sql.verify_events)
            .bind(streams)
            .bind(versions)
            .bind(ids)
            .bind(types)
            .bind(schemas)
            .bind(xids)
            .bind(sequences)
            .bind(&*self.tenant)
            .fetch_all(self.store.pool())
            .await
            .map_err(backend("verifying a tenant's delivered events"))?;
        rows.iter().map(mismatch).collect()
    }

    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let rows = sqlx::query(&self.sql.read_log)
            .bind(signed(after.transaction_id))
            .bind(signed(after.sequence))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(&*self.tenant)
            .fetch_all(self.store.pool())
            .await
            .map_err(backend("reading a tenant's log"))?;
        rows.iter().map(recorded_event).collect()
    }

    async fn wait_for_log(&self, after: LogPosition, timeout: Duration) -> Result<bool, Error> {
        let store = &self.store;
        let mut woken = store.wake().subscribe(store.pool(), &store.sql().channel);
        let deadline = Instant::now() + timeout;
        loop {
            if self.readable_head().await? > Some(after) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let step = (deadline - now).min(store.config().poll_interval);
            // Any append wakes every reader: look whether it was this tenant's.
            let _ = tokio::time::timeout(step, woken.changed()).await;
        }
    }

    async fn stream_version(&self, stream_id: &StreamId) -> Result<StreamVersion, Error> {
        let v: i64 = sqlx::query_scalar(&self.sql.stream_version)
            .bind(stream_id.as_str())
            .bind(&*self.tenant)
            .fetch_one(self.store.pool())
            .await
            .map_err(backend("reading a tenant's stream version"))?;
        Ok(StreamVersion(unsigned(v)))
    }

    async fn log_head(&self) -> Result<Option<LogPosition>, Error> {
        self.readable_head().await
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>, Error> {
        let row = sqlx::query(&self.sql.command_outcome)
            .bind(command_id.0)
            .bind(&*self.tenant)
            .fetch_optional(self.store.pool())
            .await
            .map_err(backend("reading a tenant's command outcome"))?;
        let Some(row) = row else { return Ok(None) };
        let decode = |e| backend("decoding a command outcome")(e);
        let stream: String = row.try_get(0).map_err(decode)?;
        let xid: Option<i64> = row.try_get(3).map_err(decode)?;
        let sequence: Option<i64> = row.try_get(4).map_err(decode)?;
        Ok(Some(AppendOutcome {
            stream_id: StreamId::new(stream)?,
            command_id: Some(command_id),
            previous_version: StreamVersion(unsigned(row.try_get(1).map_err(decode)?)),
            version: StreamVersion(unsigned(row.try_get(2).map_err(decode)?)),
            last_position: xid.zip(sequence).map(|(x, s)| LogPosition::new(unsigned(x), unsigned(s))),
            duplicate: true,
        }))
    }

    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, Error> {
        let row = sqlx::query(&self.sql.load_snapshot)
            .bind(stream_id.as_str())
            .bind(&*self.tenant)
            .fetch_optional(self.store.pool())
            .await
            .map_err(backend("loading a tenant's snapshot"))?;
        let Some(row) = row else { return Ok(None) };
        let decode = |e| backend("decoding a snapshot")(e);
        let schema_version: i32 = row.try_get(1).map_err(decode)?;
        let state: sqlx::types::Json<serde_json::Value> = row.try_get(3).map_err(decode)?;
        Ok(Some(Snapshot {
            stream_id: stream_id.clone(),
            schema_version: u32::try_from(schema_version).unwrap_or(0),
            stream_version: StreamVersion(unsigned(row.try_get(2).map_err(decode)?)),
            state: state.0,
            taken_at: row.try_get(4).map_err(decode)?,
        }))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let owner = self.owner_of(&snapshot.stream_id).await?.flatten();
        if owner.as_deref() != Some(&*self.tenant) {
            return Err(Error::TenantMismatch {
                stream: snapshot.stream_id,
                stream_tenant: owner,
                tenant: Some(self.tenant.to_string()),
            });
        }
        self.store.save_snapshot(snapshot).await
    }
}

//! Appending: one statement per attempt, conflicts recognised by constraint name.

use sqlx::Row;
use tidemark::{AppendOutcome, AppendRequest, Error, EventId, ExpectedVersion, LogPosition, StreamVersion};
use uuid::Uuid;

use crate::error::{backend, refuses_tenant, violated_unique};
use crate::row::{signed, unsigned, Columns};
use crate::sql::{COMMAND_KEY, EVENT_ID_KEY, STREAM_VERSION_KEY};
use crate::store::PgEventStore;

pub(crate) fn expected_parts(expected: ExpectedVersion) -> (i32, i64) {
    match expected {
        ExpectedVersion::NoStream => (1, 0),
        ExpectedVersion::StreamExists => (2, 0),
        ExpectedVersion::Exact(v) => (3, signed(v.0)),
        _ => (0, 0),
    }
}

/// Whether losing a race for a version is the writer's conflict (it named a version)
/// or something to retry (it accepted any version).
fn retries_races(expected: ExpectedVersion) -> bool {
    matches!(expected, ExpectedVersion::Any | ExpectedVersion::StreamExists)
}

/// The result of one append statement.
enum Attempt {
    /// The events (if any) are stored.
    Done(AppendOutcome),
    /// The stream was not at the expected version; nothing was written.
    Rejected { head: StreamVersion },
}

impl PgEventStore {
    pub(crate) async fn append_request(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        let (started, events) = (std::time::Instant::now(), request.events.len());
        let span = tracing::debug_span!("append", stream = %request.stream_id, events, outcome = tracing::field::Empty);
        let result = tracing::Instrument::instrument(self.append_checked(request), span.clone()).await;
        let outcome = crate::metrics::appended(&result, events, started.elapsed());
        span.record("outcome", outcome);
        result
    }

    async fn append_checked(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        request.validate(self.config().max_event_bytes)?;
        if let Some(id) = repeated_id(&request) {
            return Err(Error::DuplicateEventId(id));
        }
        match self.group_commit() {
            Some(group) => group.submit(self, request).await,
            None => self.append_alone(request).await,
        }
    }

    /// Appends one validated request in a statement of its own.
    pub(crate) async fn append_alone(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        let columns = Columns::new(&request.events)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.append_once(&request, &columns).await {
                Ok(Attempt::Done(outcome)) => {
                    if outcome.last_position.is_some() {
                        self.wake().appended();
                    }
                    return Ok(outcome);
                }
                Ok(Attempt::Rejected { head }) => return self.rejected(&request, head).await,
                Err(error) => error,
            };
            let retry = attempt <= self.config().race_retries && retries_races(request.expected);
            if let Some(outcome) = self.classify(&request, &columns, error, retry).await? {
                return Ok(outcome);
            }
        }
    }

    async fn append_once(&self, request: &AppendRequest, c: &Columns<'_>) -> Result<Attempt, sqlx::Error> {
        if request.command_id.is_some() || request.events.is_empty() {
            return self.append_general(request, c).await;
        }
        match request.expected {
            ExpectedVersion::NoStream => self.append_plain(request, c, &self.sql().append_new, None).await,
            ExpectedVersion::Exact(v) if v == StreamVersion::EMPTY => {
                self.append_plain(request, c, &self.sql().append_new, None).await
            }
            ExpectedVersion::Exact(v) => self.append_plain(request, c, &self.sql().append_exact, Some(v)).await,
            _ => self.append_general(request, c).await,
        }
    }

    /// The lean statements for the common cases (a new stream, or an exact version,
    /// without a command id): the unique key rejects a taken version, and for an exact
    /// version an index probe checks that the expected version exists. No row back means
    /// the expected version did not hold.
    async fn append_plain(
        &self,
        request: &AppendRequest,
        c: &Columns<'_>,
        sql: &str,
        exact: Option<StreamVersion>,
    ) -> Result<Attempt, sqlx::Error> {
        let mut query = c.bind_to(sqlx::query(sql).bind(request.stream_id.as_str()));
        if let Some(v) = exact {
            query = query.bind(signed(v.0));
        }
        let mut conn = self.warm().await?;
        let row = query.fetch_one(&mut *conn).await?;
        let (Some(xid), Some(sequence)) = (row.try_get::<Option<i64>, _>(0)?, row.try_get::<Option<i64>, _>(1)?) else {
            let head: i64 = sqlx::query_scalar(&self.sql().stream_version)
                .bind(request.stream_id.as_str())
                .fetch_one(&mut *conn)
                .await?;
            conn.keep();
            return Ok(Attempt::Rejected { head: StreamVersion(unsigned(head)) });
        };
        conn.keep();
        let previous = exact.unwrap_or(StreamVersion::EMPTY);
        Ok(Attempt::Done(AppendOutcome {
            stream_id: request.stream_id.clone(),
            command_id: None,
            previous_version: previous,
            version: StreamVersion(previous.0 + request.events.len() as u64),
            last_position: Some(LogPosition::new(unsigned(xid), unsigned(sequence))),
            duplicate: false,
        }))
    }

    /// The general statement: any expected version, a command id, or no events.
    async fn append_general(&self, request: &AppendRequest, c: &Columns<'_>) -> Result<Attempt, sqlx::Error> {
        let (kind, exact) = expected_parts(request.expected);
        let query = sqlx::query(&self.sql().append)
            .bind(request.stream_id.as_str())
            .bind(kind)
            .bind(exact)
            .bind(request.command_id.map(|id| id.0));
        let mut conn = self.warm().await?;
        let row = c.bind_to(query).fetch_one(&mut *conn).await?;
        conn.keep();
        let head = StreamVersion(unsigned(row.try_get("head")?));
        let Some(previous) = row.try_get::<Option<i64>, _>("previous")? else {
            return Ok(Attempt::Rejected { head });
        };
        let xid: Option<i64> = row.try_get("xid")?;
        let sequence: Option<i64> = row.try_get("sequence")?;
        let previous = StreamVersion(unsigned(previous));
        Ok(Attempt::Done(AppendOutcome {
            stream_id: request.stream_id.clone(),
            command_id: request.command_id,
            previous_version: previous,
            version: StreamVersion(previous.0 + request.events.len() as u64),
            last_position: xid.zip(sequence).map(|(x, s)| LogPosition::new(unsigned(x), unsigned(s))),
            duplicate: false,
        }))
    }

    /// The append was not written: its command id's earlier outcome if it was handled
    /// already, otherwise why ([`refusal`](Self::refusal)).
    pub(crate) async fn rejected(&self, request: &AppendRequest, head: StreamVersion) -> Result<AppendOutcome, Error> {
        if let Some(outcome) = self.earlier_outcome(request).await? {
            return Ok(outcome);
        }
        Err(self.refusal(request, Some(head)).await?)
    }

    /// Why an append was not written: the stream is deleted, or it was not at the
    /// expected version (`head` when the statement saw it, otherwise read now). Only the
    /// refused path pays for this read.
    async fn refusal(&self, request: &AppendRequest, head: Option<StreamVersion>) -> Result<Error, Error> {
        let (version, deleted) = self.stream_end(&request.stream_id).await?;
        let stream = request.stream_id.clone();
        if deleted {
            return Ok(Error::StreamDeleted { stream, version });
        }
        if head.is_none() && version == StreamVersion::EMPTY {
            // The stream-version key refused a version of a stream that reads as empty:
            // its events are hidden from this connection by row-level security, so the
            // stream is another tenant's (whom this connection may not learn).
            let tenant = request.events.first().and_then(|e| e.metadata.tenant.clone());
            return Ok(Error::TenantMismatch { stream, stream_tenant: None, tenant });
        }
        Ok(Error::Conflict { stream, expected: request.expected, actual: head.unwrap_or(version) })
    }

    async fn earlier_outcome(&self, request: &AppendRequest) -> Result<Option<AppendOutcome>, Error> {
        match request.command_id {
            Some(id) => self.outcome_of(id).await,
            None => Ok(None),
        }
    }

    /// Turns a failed statement into an outcome (a duplicate command), an error, or
    /// `None` to try again.
    async fn classify(
        &self,
        request: &AppendRequest,
        columns: &Columns<'_>,
        error: sqlx::Error,
        retry: bool,
    ) -> Result<Option<AppendOutcome>, Error> {
        let constraint = violated_unique(&error);
        if matches!(constraint, Some(COMMAND_KEY | STREAM_VERSION_KEY)) {
            if let Some(outcome) = self.earlier_outcome(request).await? {
                return Ok(Some(outcome));
            }
        }
        match constraint {
            Some(STREAM_VERSION_KEY) if retry => Ok(None),
            Some(STREAM_VERSION_KEY) => Err(self.refusal(request, None).await?),
            Some(EVENT_ID_KEY) => Err(Error::DuplicateEventId(self.stored_event_id(&columns.ids).await?)),
            _ if refuses_tenant(&error) => Err(self.tenant_mismatch(request).await?),
            _ => Err(backend("appending events")(error)),
        }
    }

    async fn stored_event_id(&self, ids: &[Uuid]) -> Result<EventId, Error> {
        let id: Option<Uuid> = sqlx::query_scalar(&self.sql().find_event_id)
            .bind(ids)
            .fetch_optional(self.pool())
            .await
            .map_err(backend("finding a duplicate event id"))?;
        Ok(EventId(id.or_else(|| ids.first().copied()).unwrap_or_default()))
    }
}

/// An event id that occurs twice within one request.
fn repeated_id(request: &AppendRequest) -> Option<EventId> {
    if request.events.len() < 2 {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    request.events.iter().map(|e| e.event_id).find(|id| !seen.insert(*id))
}

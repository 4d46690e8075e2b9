//! The lean group-commit statement. A batch whose every request expects no stream or an
//! exact version (what command handlers send when they name the version they decided on)
//! is written by one plain `INSERT … SELECT` (`append_batch_plain` in `sql.rs`): no
//! per-request rows to assemble. When some of its requests carry command ids, the insert
//! goes in one common table expression and the command rows in another
//! (`with_commands`). Any other batch takes the general statement.

use std::collections::HashMap;

use sqlx::Row;
use tidemark::{AppendOutcome, AppendRequest, ExpectedVersion, LogPosition, StreamVersion};

use crate::batch::{Failure, Pending, Refused};
use crate::row::{signed, unsigned, Columns};
use crate::store::PgEventStore;

/// Whether `request` can go in the lean statement.
pub(crate) fn is_plain(request: &AppendRequest) -> bool {
    !request.events.is_empty() && matches!(request.expected, ExpectedVersion::NoStream | ExpectedVersion::Exact(_))
}

/// The version a plain request builds on: 0 for a new stream.
fn base_of(expected: ExpectedVersion) -> StreamVersion {
    match expected {
        ExpectedVersion::Exact(v) => v,
        _ => StreamVersion::EMPTY,
    }
}

/// One row per request (its stream, the version it builds on, its command id and number
/// of events), one per event (its request's 1-based index, its ordinal within the
/// request, and its columns).
#[derive(Default)]
struct PlainColumns<'a> {
    streams: Vec<&'a str>,
    bases: Vec<i64>,
    commands: Vec<Option<uuid::Uuid>>,
    counts: Vec<i32>,
    requests: Vec<i64>,
    ordinals: Vec<i32>,
    events: Columns<'a>,
}

impl<'a> PlainColumns<'a> {
    fn new(batch: &'a [Pending]) -> Result<Self, tidemark::Error> {
        let mut c = Self::default();
        for (i, p) in (1_i64..).zip(batch) {
            let r = &p.request;
            c.streams.push(r.stream_id.as_str());
            c.bases.push(signed(base_of(r.expected).0));
            c.commands.push(r.command_id.map(|id| id.0));
            c.counts.push(i32::try_from(r.events.len()).unwrap_or(i32::MAX));
            for k in 1..=r.events.len() {
                c.requests.push(i);
                c.ordinals.push(i32::try_from(k).unwrap_or(i32::MAX));
            }
            c.events.extend(&r.events)?;
        }
        Ok(c)
    }
}

/// Runs the lean statement for a batch of plain requests (distinct streams). Per
/// request: the outcome, or [`Refused::HeadUnknown`] when its expected version did not
/// hold (nothing of it was written).
pub(crate) async fn plain_statement(
    store: &PgEventStore,
    batch: &[Pending],
) -> Result<Vec<Result<AppendOutcome, Refused>>, Failure> {
    let c = PlainColumns::new(batch).map_err(|e| Failure::TryAlone(e.to_string()))?;
    // One event per request (a batch of commands, most often): no join of events to
    // requests is needed, and the statement without it costs the server less.
    let single = c.requests.len() == c.streams.len();
    let commands = c.commands.iter().any(Option::is_some);
    let sql = store.sql();
    let query = match (single, commands) {
        (true, false) => sqlx::query(&sql.append_batch_single),
        (true, true) => sqlx::query(&sql.append_batch_single_commands),
        (false, false) => sqlx::query(&sql.append_batch_plain),
        (false, true) => sqlx::query(&sql.append_batch_plain_commands),
    };
    let query = query.bind(&c.streams).bind(&c.bases);
    let query = if single { query } else { query.bind(&c.requests).bind(&c.ordinals) };
    let query = c.events.bind_to(query);
    let query = if commands { query.bind(&c.commands).bind(&c.counts) } else { query };
    let mut conn = store.warm().await.map_err(Failure::of_statement)?;
    let rows = query.fetch_all(&mut *conn).await.map_err(Failure::of_statement)?;
    conn.keep();
    // The batch is committed: a row that cannot be read must not send its appends again.
    let decode = |error| Failure::Everyone { context: "decoding a group commit", error };
    let mut written: HashMap<String, LogPosition> = HashMap::with_capacity(batch.len());
    for row in &rows {
        let stream: String = row.try_get(0).map_err(decode)?;
        let at = LogPosition::new(unsigned(row.try_get(1).map_err(decode)?), unsigned(row.try_get(2).map_err(decode)?));
        let last = written.entry(stream).or_insert(at);
        *last = (*last).max(at);
    }
    Ok(batch
        .iter()
        .map(|p| {
            let r = &p.request;
            let Some(last) = written.get(r.stream_id.as_str()) else { return Err(Refused::HeadUnknown) };
            let previous = base_of(r.expected);
            Ok(AppendOutcome {
                stream_id: r.stream_id.clone(),
                command_id: r.command_id,
                previous_version: previous,
                version: StreamVersion(previous.0 + r.events.len() as u64),
                last_position: Some(*last),
                duplicate: false,
            })
        })
        .collect())
}

//! What the tally read model should hold, folded in plain SQL over the store's `events`
//! table: no code of the project reads or decodes the events.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use sqlx::PgPool;
use tidemark::StreamId;

use super::Tally;

/// Per stream: the tally of its deposits and withdrawals, and their stream versions in
/// order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Fold {
    pub tallies: BTreeMap<String, Tally>,
    pub versions: BTreeMap<String, Vec<u64>>,
}

/// The fold of every event in `schema`'s `events` table, leaving out the versions
/// `except` names of one stream (parked or skipped ones).
pub(crate) async fn sql_fold(pool: &PgPool, schema: &str, except: Option<(&StreamId, RangeInclusive<u64>)>) -> Fold {
    let sql = format!(
        "SELECT stream_id, count(*), \
           sum(CASE event_type WHEN 'Deposited' THEN (payload->>'amount')::bigint \
                               ELSE -(payload->>'amount')::bigint END)::bigint, \
           max(stream_version), array_agg(stream_version ORDER BY stream_version) \
         FROM \"{schema}\".events \
         WHERE event_type IN ('Deposited', 'Withdrawn') \
           AND NOT (stream_id = $1 AND stream_version BETWEEN $2 AND $3) \
         GROUP BY stream_id"
    );
    let (stream, from, to) = match &except {
        Some((stream, range)) => (stream.as_str(), *range.start() as i64, *range.end() as i64),
        None => ("", 1, 0),
    };
    let rows: Vec<(String, i64, i64, i64, Vec<i64>)> =
        sqlx::query_as(&sql).bind(stream).bind(from).bind(to).fetch_all(pool).await.expect("fold the events in SQL");
    let mut fold = Fold::default();
    for (stream, events, balance, version, versions) in rows {
        let tally = Tally { events: events as u64, balance, version: version as u64 };
        fold.tallies.insert(stream.clone(), tally);
        fold.versions.insert(stream, versions.into_iter().map(|v| v as u64).collect());
    }
    fold
}

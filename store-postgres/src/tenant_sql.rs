//! The SQL of a tenant's view of the store: the store's reads, each limited to the events
//! whose `tenant` column (migration 1004) is the tenant bound last. Built once per store,
//! like `sql::Statements`; the only text spliced in is the validated schema name.

use crate::sql::{read_tail, EVENT_COLUMNS, HORIZON};

#[derive(Debug)]
pub(crate) struct TenantStatements {
    pub read_stream: String,
    pub read_log: String,
    pub read_tail: String,
    pub log_head: String,
    pub stream_version: String,
    pub stream_tenant: String,
    pub command_outcome: String,
    pub load_snapshot: String,
    pub identities: String,
    pub verify_events: String,
}

impl TenantStatements {
    pub(crate) fn new(schema: &str, gap_safe: bool) -> Self {
        let s = format!("\"{schema}\"");
        let below_horizon = if gap_safe { format!("AND transaction_id < {HORIZON}") } else { String::new() };
        // The stream's first event is the tenant's: one probe of the primary key.
        let owned = |alias: &str, tenant: &str| {
            format!(
                "EXISTS (SELECT 1 FROM {s}.events f WHERE f.stream_id = {alias}.stream_id \
                 AND f.stream_version = 1 AND f.tenant = {tenant})"
            )
        };
        Self {
            read_stream: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events \
                 WHERE stream_id = $1 AND stream_version >= $2 AND tenant = $4 ORDER BY stream_version LIMIT $3"
            ),
            read_log: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events \
                 WHERE tenant = $4 AND (transaction_id, sequence) > ($1, $2) {below_horizon} \
                 ORDER BY transaction_id, sequence LIMIT $3"
            ),
            read_tail: read_tail(&s, gap_safe, true),
            log_head: format!(
                "SELECT transaction_id, sequence FROM {s}.events WHERE tenant = $1 {below_horizon} \
                 ORDER BY transaction_id DESC, sequence DESC LIMIT 1"
            ),
            stream_version: format!(
                "SELECT coalesce(max(stream_version), 0) FROM {s}.events WHERE stream_id = $1 AND tenant = $2"
            ),
            stream_tenant: format!("SELECT tenant FROM {s}.events WHERE stream_id = $1 AND stream_version = 1"),
            command_outcome: format!(
                "SELECT c.stream_id, c.previous_version, c.version, e.transaction_id, e.sequence \
                 FROM {s}.commands c LEFT JOIN {s}.events e \
                   ON e.stream_id = c.stream_id AND e.stream_version = c.version AND c.version > c.previous_version \
                 WHERE c.command_id = $1 AND {}",
                owned("c", "$2")
            ),
            load_snapshot: format!(
                "SELECT stream_id, schema_version, stream_version, state, taken_at FROM {s}.snapshots sn \
                 WHERE sn.stream_id = $1 AND {}",
                owned("sn", "$2")
            ),
            identities: format!(
                "SELECT e.transaction_id, e.sequence, e.event_id, e.stream_id, e.stream_version, e.event_type, \
                   e.schema_version \
                 FROM unnest((SELECT $1::text[]), (SELECT $2::bigint[])) AS k(stream_id, stream_version) \
                 CROSS JOIN LATERAL (SELECT * FROM {s}.events x \
                   WHERE x.stream_id = k.stream_id AND x.stream_version = k.stream_version AND x.tenant = $3 \
                   LIMIT 1) AS e"
            ),
            verify_events: format!(
                "SELECT k.i, e.transaction_id, e.sequence, e.event_id, e.stream_id, e.stream_version, e.event_type, \
                   e.schema_version \
                 FROM unnest((SELECT $1::text[]), (SELECT $2::bigint[]), (SELECT $3::uuid[]), (SELECT $4::text[]), \
                   (SELECT $5::integer[]), (SELECT $6::bigint[]), (SELECT $7::bigint[])) \
                   WITH ORDINALITY AS k(stream_id, stream_version, event_id, event_type, schema_version, \
                     transaction_id, sequence, i) \
                 LEFT JOIN LATERAL (SELECT x.transaction_id, x.sequence, x.event_id, x.stream_id, x.stream_version, \
                     x.event_type, x.schema_version FROM {s}.events x \
                   WHERE x.stream_id = k.stream_id AND x.stream_version = k.stream_version AND x.tenant = $8 \
                   LIMIT 1) AS e ON true \
                 WHERE (e.event_id, e.event_type, e.schema_version, e.transaction_id, e.sequence) \
                   IS DISTINCT FROM (k.event_id, k.event_type, k.schema_version, k.transaction_id, k.sequence)"
            ),
        }
    }
}

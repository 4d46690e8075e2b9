//! The store's SQL, built once per schema. Every value is a bound parameter; the only
//! text spliced in is the schema name, validated by `PgStoreConfig::validate`.

/// Columns of a recorded event, in the order `row::recorded_event` reads them.
pub(crate) const EVENT_COLUMNS: &str = "transaction_id, sequence, event_id, stream_id, stream_version, event_type, \
     schema_version, payload, correlation_id, causation_id, metadata, recorded_at";

/// The type name of a tombstone, spliced into the append statements (a constant, not input).
const TOMBSTONE: &str = tidemark::TOMBSTONE_EVENT_TYPE;

/// The head probe of the lean batch statements: the stream's last version, or -1 when its
/// last event is a tombstone (no expected version matches it, so nothing is written).
const LIVE_HEAD: &str = "CASE WHEN x.event_type = '_Tombstone' THEN -1 ELSE x.stream_version END";

/// The oldest transaction still running, as a bigint: rows of transactions below it
/// are final (committed and visible, or rolled back).
pub(crate) const HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)";

/// Every stored event, live or archived: the two tables as one relation for the
/// statements that read events. PostgreSQL pushes the conditions into both tables and
/// merges their index scans; the archive is empty, or holds only streams whose tombstone
/// (their last event) is live, so a read of live events pays one empty index probe.
fn all_events(s: &str) -> String {
    format!(
        "(SELECT {EVENT_COLUMNS} FROM {s}.events \
          UNION ALL SELECT {EVENT_COLUMNS} FROM {s}.archived_events)"
    )
}

#[derive(Debug)]
pub(crate) struct Statements {
    pub append: String,
    pub read_stream: String,
    pub read_log: String,
    pub read_tail: String,
    pub log_head: String,
    pub stream_version: String,
    pub stream_end: String,
    pub command_outcome: String,
    pub load_snapshot: String,
    pub save_snapshot: String,
    pub find_event_id: String,
    pub append_batch: String,
    pub append_batch_plain: String,
    pub append_batch_single: String,
    pub append_batch_plain_commands: String,
    pub append_batch_single_commands: String,
    pub append_new: String,
    pub append_exact: String,
    pub read_event: String,
    pub identities: String,
    pub verify_events: String,
    pub channel: String,
}

impl Statements {
    pub(crate) fn new(schema: &str, gap_safe: bool) -> Self {
        let s = format!("\"{schema}\"");
        let all = all_events(&s);
        let below_horizon = if gap_safe { format!("AND transaction_id < {HORIZON}") } else { String::new() };
        Self {
            append: append(&s),
            append_batch: append_batch(&s),
            append_batch_plain: append_batch_plain(&s),
            append_batch_single: append_batch_single(&s),
            append_batch_plain_commands: with_commands(&s, &append_batch_plain_insert(&s), 12, true),
            append_batch_single_commands: with_commands(&s, &append_batch_single(&s), 10, false),
            append_new: append_plain(&s, false),
            append_exact: append_plain(&s, true),
            read_event: format!("SELECT {EVENT_COLUMNS} FROM {all} AS x WHERE event_id = $1 LIMIT 1"),
            // One index probe per key. A plain join let PostgreSQL cache, while the table
            // was small, a hash join that reads the whole table on every call. The arrays
            // are read through scalar subqueries, so no plan knows their lengths: plans
            // made for the values of a call (one or two keys, a projection batch's check)
            // then cost no less than the generic plan, and PostgreSQL keeps the generic
            // one. Otherwise the statement was planned again on every call, for more server
            // time than it ran.
            identities: format!(
                "SELECT e.transaction_id, e.sequence, e.event_id, e.stream_id, e.stream_version, e.event_type, \
                   e.schema_version \
                 FROM unnest((SELECT $1::text[]), (SELECT $2::bigint[])) AS k(stream_id, stream_version) \
                 CROSS JOIN LATERAL (SELECT * FROM {all} x \
                   WHERE x.stream_id = k.stream_id AND x.stream_version = k.stream_version LIMIT 1) AS e"
            ),
            verify_events: verify_events(&all),
            read_stream: format!(
                "SELECT {EVENT_COLUMNS} FROM {all} AS x \
                 WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3"
            ),
            read_log: format!(
                "SELECT {EVENT_COLUMNS} FROM {all} AS x \
                 WHERE (transaction_id, sequence) > ($1, $2) {below_horizon} \
                 ORDER BY transaction_id, sequence LIMIT $3"
            ),
            read_tail: read_tail(&s, gap_safe, false),
            log_head: format!(
                "SELECT transaction_id, sequence FROM {s}.events WHERE true {below_horizon} \
                 ORDER BY transaction_id DESC, sequence DESC LIMIT 1"
            ),
            stream_end: format!(
                "SELECT stream_version, event_type = '{TOMBSTONE}' FROM {s}.events WHERE stream_id = $1 \
                 ORDER BY stream_version DESC LIMIT 1"
            ),
            stream_version: format!(
                "SELECT coalesce(max(stream_version), 0) FROM {s}.events WHERE stream_id = $1"
            ),
            command_outcome: format!(
                "SELECT c.stream_id, c.previous_version, c.version, e.transaction_id, e.sequence \
                 FROM {s}.commands c LEFT JOIN {all} e \
                   ON e.stream_id = c.stream_id AND e.stream_version = c.version AND c.version > c.previous_version \
                 WHERE c.command_id = $1"
            ),
            load_snapshot: format!(
                "SELECT stream_id, schema_version, stream_version, state, taken_at FROM {s}.snapshots WHERE stream_id = $1"
            ),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots AS old (stream_id, schema_version, stream_version, state, taken_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (stream_id) DO UPDATE SET schema_version = EXCLUDED.schema_version, \
                   stream_version = EXCLUDED.stream_version, state = EXCLUDED.state, taken_at = EXCLUDED.taken_at \
                 WHERE old.schema_version <> EXCLUDED.schema_version OR old.stream_version <= EXCLUDED.stream_version"
            ),
            find_event_id: format!("SELECT event_id FROM {s}.events WHERE event_id = ANY($1) LIMIT 1"),
            channel: format!("{schema}_events"),
        }
    }
}

/// A page of the log below the horizon, and whether committed events after the cursor
/// are held back above it (by an older transaction still running). Always one row at
/// least: when the page is empty, the event columns are NULL. `held_back` is one index
/// probe, evaluated once: the first row at or above the horizon (or after the cursor,
/// when the cursor is above the horizon already). Written as ORDER BY … LIMIT 1, not as
/// EXISTS, which the planner answers with a sequential scan.
/// With `of_tenant`, the page holds the events of the tenant bound as `$4` only.
pub(crate) fn read_tail(s: &str, gap_safe: bool, of_tenant: bool) -> String {
    let tenant = if of_tenant { "AND tenant = $4" } else { "" };
    let (horizon, below, held) = if gap_safe {
        (
            "pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            "AND transaction_id < h.xmin",
            format!(
                "coalesce((SELECT true FROM {s}.events x \
                   WHERE (x.transaction_id, x.sequence) > ((SELECT held_xid FROM h), (SELECT held_sequence FROM h)) \
                   ORDER BY x.transaction_id, x.sequence LIMIT 1), false)"
            ),
        )
    } else {
        ("9223372036854775807", "", "false".to_owned())
    };
    format!(
        "WITH h AS MATERIALIZED ( \
           SELECT x AS xmin, CASE WHEN x > $1 THEN x - 1 ELSE $1 END AS held_xid, \
             CASE WHEN x > $1 THEN 9223372036854775807 ELSE $2 END AS held_sequence \
           FROM (SELECT {horizon}) AS s(x)) \
         SELECT e.*, {held} AS held_back FROM h LEFT JOIN LATERAL ( \
           SELECT {EVENT_COLUMNS} FROM {s}.events \
           WHERE (transaction_id, sequence) > ($1, $2) {below} {tenant} \
           ORDER BY transaction_id, sequence LIMIT $3 \
         ) e ON true"
    )
}

/// One statement, one round trip: check the expected version and that the stream does
/// not end with a tombstone, record the command id, insert every event. Expected-version kinds in `$2`: 0 any, 1 no stream, 2 stream
/// exists, 3 exact (`$3`). A concurrent append of the same version or command id fails
/// the whole statement with a unique violation on a named constraint.
fn append(s: &str) -> String {
    format!(
        "WITH head AS ( \
           SELECT coalesce(l.v, 0) AS v, coalesce(l.t = '{TOMBSTONE}', false) AS deleted \
           FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
             SELECT stream_version AS v, event_type AS t FROM {s}.events WHERE stream_id = $1 \
             ORDER BY stream_version DESC LIMIT 1) AS l ON true \
         ), base AS ( \
           SELECT CASE WHEN $2 = 3 THEN $3::bigint ELSE h.v END AS v FROM head h \
           WHERE NOT h.deleted \
             AND CASE $2 WHEN 0 THEN true WHEN 1 THEN h.v = 0 WHEN 2 THEN h.v > 0 ELSE h.v = $3 END \
         ), cmd AS ( \
           INSERT INTO {s}.commands (command_id, stream_id, previous_version, version) \
           SELECT $4, $1, b.v, b.v + cardinality($5::uuid[]) FROM base b WHERE $4::uuid IS NOT NULL \
         ), ins AS ( \
           INSERT INTO {s}.events (event_id, stream_id, stream_version, event_type, schema_version, \
                                   payload, correlation_id, causation_id, metadata) \
           SELECT u.id, $1, b.v + u.n, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus, u.meta::jsonb \
           FROM base b, unnest($5::uuid[], $6::text[], $7::int4[], $8::text[], $9::uuid[], $10::uuid[], $11::text[]) \
                WITH ORDINALITY AS u(id, typ, ver, payload, corr, caus, meta, n) \
           RETURNING transaction_id, sequence \
         ) \
         SELECT h.v AS head, (SELECT b.v FROM base b) AS previous, \
                (SELECT max(transaction_id) FROM ins) AS xid, (SELECT max(sequence) FROM ins) AS sequence \
         FROM head h"
    )
}

/// The lean appends: to a new stream (`exact` false: versions 1..n, only when the stream
/// has no event), or after exact version `$9` (which must exist and not be a tombstone). One
/// row comes back: the transaction and last sequence of the events, NULLs when the expected
/// version did not hold. A tombstone is
/// always its stream's last event, so an append after it either names the tombstone's
/// version (refused by the guard) or an earlier one (refused by the stream-version key,
/// as the tombstone holds the next version).
fn append_plain(s: &str, exact: bool) -> String {
    let (base, guard) = match exact {
        true => (
            "$9::bigint + ",
            format!(
                "WHERE EXISTS (SELECT 1 FROM {s}.events \
                   WHERE stream_id = $1 AND stream_version = $9 AND event_type <> '{TOMBSTONE}')"
            ),
        ),
        // The stream-version key alone would refuse a taken version 1, but an archived
        // stream keeps only its tombstone: the probe refuses any stream with an event.
        false => ("", format!("WHERE NOT EXISTS (SELECT 1 FROM {s}.events WHERE stream_id = $1)")),
    };
    let insert = format!(
        "INSERT INTO {s}.events (event_id, stream_id, stream_version, event_type, schema_version, \
                                 payload, correlation_id, causation_id, metadata) \
         SELECT u.id, $1, {base}u.n, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus, u.meta::jsonb \
         FROM unnest($2::uuid[], $3::text[], $4::int4[], $5::text[], $6::uuid[], $7::uuid[], $8::text[]) \
              WITH ORDINALITY AS u(id, typ, ver, payload, corr, caus, meta, n) \
         {guard} ORDER BY u.n \
         RETURNING transaction_id, sequence"
    );
    // One row whatever the events: their transaction and last sequence, NULLs when the
    // guard wrote nothing.
    format!("WITH ins AS ({insert}) SELECT max(transaction_id), max(sequence) FROM ins")
}

/// The group-commit form of `append`: requests in `$1..$6` (index, stream, kind,
/// exact version, command id, event count), events in `$7..$15` (request index,
/// ordinal within the request, then the columns of `append`). Streams in one batch are
/// distinct. One row per request: index, head, base (NULL when the expected version did
/// not hold), transaction id, last position.
fn append_batch(s: &str) -> String {
    format!(
        "WITH req AS ( \
           SELECT * FROM unnest($1::int4[], $2::text[], $3::int4[], $4::int8[], $5::uuid[], $6::int4[]) \
             AS r(i, stream_id, kind, exact, command_id, n) \
         ), heads AS ( \
           SELECT r.*, coalesce(l.v, 0) AS head, coalesce(l.t = '{TOMBSTONE}', false) AS deleted \
           FROM req r LEFT JOIN LATERAL (SELECT e.stream_version AS v, e.event_type AS t FROM {s}.events e \
             WHERE e.stream_id = r.stream_id ORDER BY e.stream_version DESC LIMIT 1) AS l ON true \
         ), ok AS ( \
           SELECT h.i, h.stream_id, h.command_id, h.n, CASE WHEN h.kind = 3 THEN h.exact ELSE h.head END AS base \
           FROM heads h \
           WHERE NOT h.deleted AND CASE h.kind WHEN 0 THEN true WHEN 1 THEN h.head = 0 WHEN 2 THEN h.head > 0 ELSE h.head = h.exact END \
         ), cmd AS ( \
           INSERT INTO {s}.commands (command_id, stream_id, previous_version, version) \
           SELECT command_id, stream_id, base, base + n FROM ok WHERE command_id IS NOT NULL \
         ), ins AS ( \
           INSERT INTO {s}.events (event_id, stream_id, stream_version, event_type, schema_version, \
                                   payload, correlation_id, causation_id, metadata) \
           SELECT u.id, ok.stream_id, ok.base + u.k, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus, u.meta::jsonb \
           FROM unnest($7::int4[], $8::int4[], $9::uuid[], $10::text[], $11::int4[], $12::text[], $13::uuid[], $14::uuid[], $15::text[]) \
                AS u(i, k, id, typ, ver, payload, corr, caus, meta) \
           JOIN ok ON ok.i = u.i \
           ORDER BY u.i, u.k \
           RETURNING stream_id, transaction_id, sequence \
         ) \
         SELECT h.i, h.head, ok.base, (SELECT max(x.transaction_id) FROM ins x), \
                (SELECT max(x.sequence) FROM ins x WHERE x.stream_id = h.stream_id) \
         FROM heads h LEFT JOIN ok ON ok.i = h.i ORDER BY h.i"
    )
}

/// The lean form of `append_batch`, for batches whose every request expects no stream or
/// an exact version and carries no command id. Requests in `$1..$2` (stream, the version it
/// expects: 0 for no stream); events in `$3..$11` (the 1-based index of their request, their
/// ordinal within it, then the event columns). A request's events are inserted only when its
/// stream's head is the expected version: one backward index probe per request, in the
/// statement's one snapshot, so a request is written whole or not at all. A request whose
/// expected version did not hold returns no row; a race with an append in flight fails the
/// statement on the stream-version key. One row comes back per stream written, with its
/// last position. The probe is
/// written as ORDER BY … LIMIT 1, not as EXISTS, which the planner may answer with a scan of
/// the table. The arrays are read through scalar subqueries, as in `identities`: with their
/// lengths in sight, a plan made for a call's values always looked cheaper than the generic
/// plan, and the statement was planned again on every call, for more time than it ran.
fn append_batch_plain(s: &str) -> String {
    grouped(&append_batch_plain_insert(s))
}

/// The insert of `append_batch_plain`, one row per event.
fn append_batch_plain_insert(s: &str) -> String {
    format!(
        "INSERT INTO {s}.events (event_id, stream_id, stream_version, event_type, schema_version, \
                                 payload, correlation_id, causation_id, metadata) \
         SELECT u.id, r.stream_id, r.base + u.k, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus, u.meta::jsonb \
         FROM unnest((SELECT $3::int8[]), (SELECT $4::int4[]), (SELECT $5::uuid[]), (SELECT $6::text[]), \
                     (SELECT $7::int4[]), (SELECT $8::text[]), (SELECT $9::uuid[]), (SELECT $10::uuid[]), \
                     (SELECT $11::text[])) \
              WITH ORDINALITY AS u(i, k, id, typ, ver, payload, corr, caus, meta, n) \
         JOIN (SELECT q.i, q.stream_id, q.base \
               FROM unnest((SELECT $1::text[]), (SELECT $2::int8[])) WITH ORDINALITY AS q(stream_id, base, i) \
               WHERE coalesce((SELECT {LIVE_HEAD} FROM {s}.events x WHERE x.stream_id = q.stream_id \
                               ORDER BY x.stream_version DESC LIMIT 1), 0) = q.base) AS r ON r.i = u.i \
         ORDER BY u.n \
         RETURNING stream_id, transaction_id, sequence"
    )
}

/// One row per stream (its last position) of the rows of `insert`, which returns one per
/// event: sqlx decoding a row per event cost the client more than the server's grouping.
fn grouped(insert: &str) -> String {
    format!(
        "WITH ins AS ({insert}) \
         SELECT stream_id, max(transaction_id), max(sequence) FROM ins GROUP BY stream_id"
    )
}

/// `append_batch_plain` for a batch of one-event requests, without the join of events to
/// requests: one row per request in `$1..$9` (stream, expected version, the event's
/// columns), each guarded by its own probe.
fn append_batch_single(s: &str) -> String {
    format!(
        "INSERT INTO {s}.events (event_id, stream_id, stream_version, event_type, schema_version, \
                                 payload, correlation_id, causation_id, metadata) \
         SELECT u.id, u.stream_id, u.base + 1, u.typ, u.ver, u.payload::jsonb, u.corr, u.caus, u.meta::jsonb \
         FROM unnest((SELECT $1::text[]), (SELECT $2::int8[]), (SELECT $3::uuid[]), (SELECT $4::text[]), \
                     (SELECT $5::int4[]), (SELECT $6::text[]), (SELECT $7::uuid[]), (SELECT $8::uuid[]), \
                     (SELECT $9::text[])) \
              WITH ORDINALITY AS u(stream_id, base, id, typ, ver, payload, corr, caus, meta, n) \
         WHERE coalesce((SELECT {LIVE_HEAD} FROM {s}.events x WHERE x.stream_id = u.stream_id \
                         ORDER BY x.stream_version DESC LIMIT 1), 0) = u.base \
         ORDER BY u.n \
         RETURNING stream_id, transaction_id, sequence"
    )
}

/// A lean group-commit statement (`insert`, whose requests are `$1` and `$2`) that also
/// records the command ids of the requests it writes: `$first` holds one id per request
/// (NULL for a request without one), the next parameter its number of events. A request
/// refused by its probe writes no event, and so no command row either. A command id
/// recorded before fails the statement on the commands' key, as in `append_batch`, and
/// each append is then tried alone (where a repeated command gets its first outcome).
/// Streams are distinct within a batch, so a request is known by its stream.
fn with_commands(s: &str, insert: &str, first: usize, group: bool) -> String {
    let count = first + 1;
    let rows = match group {
        true => "SELECT stream_id, max(transaction_id), max(sequence) FROM ins GROUP BY stream_id",
        false => "SELECT stream_id, transaction_id, sequence FROM ins",
    };
    format!(
        "WITH ins AS ({insert}), \
         cmd AS ( \
           INSERT INTO {s}.commands (command_id, stream_id, previous_version, version) \
           SELECT q.command_id, q.stream_id, q.base, q.base + q.n \
           FROM unnest((SELECT $1::text[]), (SELECT $2::int8[]), (SELECT ${first}::uuid[]), (SELECT ${count}::int4[])) \
                AS q(stream_id, base, command_id, n) \
           WHERE q.command_id IS NOT NULL AND q.stream_id IN (SELECT i.stream_id FROM ins i)) \
         {rows}"
    )
}

/// Names of the constraints whose violations mean something to the store.
pub(crate) const STREAM_VERSION_KEY: &str = "events_stream_version_key";
pub(crate) const EVENT_ID_KEY: &str = "events_event_id_key";
pub(crate) const COMMAND_KEY: &str = "commands_pkey";

/// The claimed identities of delivered events, compared with the events stored at their
/// stream versions where the events are: only the claims that differ come back (with
/// their 1-based index and what is stored, or NULLs), so a batch of genuine events
/// returns no rows. A claimed number out of the columns' range is sent as NULL, which is
/// distinct from anything stored. The arrays are read through scalar subqueries, as in
/// `identities`, so that the generic plan is kept.
fn verify_events(all: &str) -> String {
    format!(
        "SELECT k.i, e.transaction_id, e.sequence, e.event_id, e.stream_id, e.stream_version, e.event_type, \
           e.schema_version \
         FROM unnest((SELECT $1::text[]), (SELECT $2::bigint[]), (SELECT $3::uuid[]), (SELECT $4::text[]), \
           (SELECT $5::integer[]), (SELECT $6::bigint[]), (SELECT $7::bigint[])) \
           WITH ORDINALITY AS k(stream_id, stream_version, event_id, event_type, schema_version, transaction_id, \
             sequence, i) \
         LEFT JOIN LATERAL (SELECT x.transaction_id, x.sequence, x.event_id, x.stream_id, x.stream_version, \
             x.event_type, x.schema_version FROM {all} x \
           WHERE x.stream_id = k.stream_id AND x.stream_version = k.stream_version LIMIT 1) AS e ON true \
         WHERE (e.event_id, e.event_type, e.schema_version, e.transaction_id, e.sequence) \
           IS DISTINCT FROM (k.event_id, k.event_type, k.schema_version, k.transaction_id, k.sequence)"
    )
}

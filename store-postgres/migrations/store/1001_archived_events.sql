-- Archiving deleted streams (see docs/getting-started.md, "Deleting and archiving streams").
--
-- A stream is deleted by a tombstone, an event of the reserved type '_Tombstone' that is
-- always its last. Its earlier events may later be moved into `archived_events`, a table
-- with the same columns (plus when the row was archived). The tombstone itself is never
-- moved: it stays in `events`, so the stream's version and its deletion stay where every
-- append statement checks them, and no version of the stream can be written again.
--
-- Both tables stay append-only for everything else:
-- - `archived_events` refuses UPDATE, DELETE and TRUNCATE;
-- - `events` refuses UPDATE and TRUNCATE as before, and a DELETE of a row unless the row
--   is not a tombstone, its stream ends with a tombstone (a sealed stream never takes
--   another event), and an identical copy of it (every column equal) is already in
--   `archived_events`. A live event can therefore never be removed, and an archived one
--   never lost or changed on the way.

CREATE TABLE archived_events (
    sequence        bigint NOT NULL,
    transaction_id  bigint NOT NULL,
    event_id        uuid NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    payload         jsonb NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    metadata        jsonb,
    recorded_at     timestamptz NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT archived_events_pkey PRIMARY KEY (stream_id, stream_version),
    CONSTRAINT archived_events_event_id_key UNIQUE (event_id)
);

-- The log is read from both tables, merged in (transaction_id, sequence) order.
CREATE INDEX archived_events_log_idx ON archived_events (transaction_id, sequence);

CREATE TRIGGER archived_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON archived_events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TRIGGER archived_events_no_truncate
    BEFORE TRUNCATE ON archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- The one DELETE `events` permits. `SET search_path FROM CURRENT` pins the schema this
-- migration runs in, whatever the deleting session's search_path.
CREATE FUNCTION events_delete_only_archived() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.event_type <> '_Tombstone'
       AND EXISTS (
           SELECT 1 FROM events t
           WHERE t.stream_id = OLD.stream_id AND t.event_type = '_Tombstone')
       AND EXISTS (
           SELECT 1 FROM archived_events a
           WHERE a.stream_id = OLD.stream_id AND a.stream_version = OLD.stream_version
             AND (a.sequence, a.transaction_id, a.event_id, a.event_type, a.schema_version, a.payload,
                  a.correlation_id, a.causation_id, a.metadata, a.recorded_at)
                 IS NOT DISTINCT FROM
                 (OLD.sequence, OLD.transaction_id, OLD.event_id, OLD.event_type, OLD.schema_version, OLD.payload,
                  OLD.correlation_id, OLD.causation_id, OLD.metadata, OLD.recorded_at))
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'tidemark events are append-only: % on %.% is refused (only an archived event of a deleted stream may leave)',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'TM001';
END;
$$;

DROP TRIGGER events_no_update_or_delete ON events;

CREATE TRIGGER events_no_update
    BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TRIGGER events_delete_only_archived
    BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_delete_only_archived();

-- Finds the tombstones an archive run considers, oldest first, without reading the table.
CREATE INDEX events_tombstones_idx ON events (recorded_at) WHERE event_type = '_Tombstone';

-- tidemark event store, schema 1.
-- Runs with search_path set to the store's schema; every name below lands there.

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction's id (xid8, epoch-extended, as bigint). The global log is
    -- ordered by (transaction_id, position) and read only below the oldest running
    -- transaction, which makes it gap-safe (see docs/gap-safe-log.md).
    transaction_id  bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id        uuid NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    payload         jsonb NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    metadata        jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key PRIMARY KEY (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_id_check CHECK (stream_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$'),
    CONSTRAINT events_stream_version_check CHECK (stream_version > 0),
    CONSTRAINT events_schema_version_check CHECK (schema_version > 0)
);

CREATE INDEX events_log_idx ON events (transaction_id, position);

-- The events table is append-only: the database refuses to change or remove events.
CREATE FUNCTION events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tidemark events are append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'TM001';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Handled command ids, written in the same statement as the command's events.
CREATE TABLE commands (
    command_id        uuid NOT NULL,
    stream_id         text NOT NULL,
    previous_version  bigint NOT NULL,
    version           bigint NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commands_pkey PRIMARY KEY (command_id)
);

CREATE TABLE snapshots (
    stream_id       text NOT NULL,
    schema_version  integer NOT NULL,
    stream_version  bigint NOT NULL,
    state           jsonb NOT NULL,
    taken_at        timestamptz NOT NULL,
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id)
);

-- Bookkeeping of the projection runtime (tidemark-projections), kept in the store's schema so
-- one migrator versions every framework table. A projection's own tables live in a schema of
-- their own (named after the store's schema and the projection), created at its set-up.

-- One row per projection: the version whose set-up has run.
CREATE TABLE projections (
    name         text NOT NULL,
    version      integer NOT NULL,
    set_up_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projections_pkey PRIMARY KEY (name),
    CONSTRAINT projections_name_check CHECK (length(name) BETWEEN 1 AND 100)
);

-- One row per projection and partition: the highest log position applied. The row is locked
-- (FOR UPDATE through an upsert) by every batch, which fences two runners applying the same
-- partition at once.
CREATE TABLE projection_partitions (
    projection      text NOT NULL,
    partition       integer NOT NULL,
    transaction_id  bigint NOT NULL DEFAULT 0,
    position        bigint NOT NULL DEFAULT 0,
    events          bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_partitions_pkey PRIMARY KEY (projection, partition)
);

-- One row per projection and stream: the last stream version the projection has seen.
-- Redeliveries at or below it are skipped; a version above it + 1 is a gap, repaired from
-- the store before the event is applied. A parked stream sends every new event to the
-- dead letters until it is retried or skipped.
CREATE TABLE projection_streams (
    projection  text NOT NULL,
    stream_id   text NOT NULL,
    version     bigint NOT NULL,
    parked      boolean NOT NULL DEFAULT false,
    CONSTRAINT projection_streams_pkey PRIMARY KEY (projection, stream_id)
);

-- Events a projection could not apply (poison events), and the later events of their
-- streams parked behind them; or events skipped by policy, kept as a record.
CREATE TABLE dead_letters (
    projection      text NOT NULL,
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    transaction_id  bigint NOT NULL,
    position        bigint NOT NULL,
    status          text NOT NULL,
    error           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_pkey PRIMARY KEY (projection, stream_id, stream_version),
    CONSTRAINT dead_letters_status_check CHECK (status IN ('parked', 'skipped'))
);

-- Named cursors into the global log: the relay's and every projection's.
CREATE TABLE checkpoints (
    name            text NOT NULL,
    transaction_id  bigint NOT NULL,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checkpoints_pkey PRIMARY KEY (name),
    CONSTRAINT checkpoints_name_check CHECK (length(name) BETWEEN 1 AND 200)
);

-- The secret the relay signs its messages with, and consumers of the store check them
-- with: a message whose signature verifies was published by a process that could read
-- this schema, so a projection runner may take it in without asking the store whether it
-- holds the event. Anyone who can publish to the subjects but cannot read this table
-- cannot forge one. One row, made once, from PostgreSQL's strong random source (each
-- gen_random_uuid() carries 122 random bits; two give 244).
CREATE TABLE message_key (
    id          smallint PRIMARY KEY DEFAULT 1,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_key_single_row CHECK (id = 1),
    CONSTRAINT message_key_secret_length CHECK (length(secret) >= 32)
);

INSERT INTO message_key (secret)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Messages a projection's consumers received that are not events of the store (no or
-- invalid tidemark headers, a payload that is not JSON, a stream of another partition,
-- headers that disagree with the stored event, or no such event). They carry no stream
-- position, so they cannot live in dead_letters (keyed by stream and version): they are
-- parked here with their reason until an operator skips them, and never hold a stream back.
CREATE TABLE rogue_messages (
    projection      text NOT NULL,
    message_key     text NOT NULL,
    partition       integer NOT NULL,
    subject         text NOT NULL,
    stream_id       text,
    stream_version  bigint,
    event_id        uuid,
    reason          text NOT NULL,
    status          text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rogue_messages_pkey PRIMARY KEY (projection, message_key),
    CONSTRAINT rogue_messages_status_check CHECK (status IN ('parked', 'skipped'))
);

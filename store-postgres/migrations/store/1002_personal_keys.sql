-- Crypto-shredding: one AES-256 key per data subject. The personal fields of events are
-- stored sealed with their subject's key; forgetting a subject sets `key` to NULL and
-- records when, so the sealed values can never be opened again and no new personal data
-- is recorded for the subject. Rows are never deleted: the row of a forgotten subject
-- says only that it was forgotten.
CREATE TABLE personal_keys (
    subject         text NOT NULL,
    key             bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    forgotten_at    timestamptz,
    CONSTRAINT personal_keys_pkey PRIMARY KEY (subject),
    CONSTRAINT personal_keys_key_or_forgotten CHECK ((key IS NULL) = (forgotten_at IS NOT NULL)),
    CONSTRAINT personal_keys_key_length CHECK (key IS NULL OR octet_length(key) = 32)
);

-- Paused projections (tidemark-projections, `projections pause NAME`): while a row names
-- a projection, its runners take no batches. Runners read this table between batches, at
-- most every half second; `projections resume NAME` deletes the row. Kept apart from
-- `projections` so that a reset or a rebuild leaves a pause in place.
CREATE TABLE projection_pauses (
    projection text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);

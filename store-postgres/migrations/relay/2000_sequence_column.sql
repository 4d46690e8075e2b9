-- A checkpoint is a log position, the pair (transaction_id, sequence): the column of its
-- second half takes the name it has in the events table and in the code.
ALTER TABLE checkpoints RENAME COLUMN position TO sequence;

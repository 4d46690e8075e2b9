-- A log position is the pair (transaction_id, sequence). The column holding its second
-- half was called `position`, the name of the whole pair everywhere else; it is now
-- `sequence`, as in the code (`LogPosition::sequence`). The identity and the log index
-- follow the column.
ALTER TABLE events RENAME COLUMN position TO sequence;

-- Projection batches now exclude each other with advisory transaction locks taken with
-- their `BEGIN`, not with a write to their partition's row: a write gives a transaction
-- its id at once, and a read-model transaction holding an id holds the relay's gap-safe
-- horizon back for as long as it runs. The partition row is now written by the batch's
-- progress record only (and created by it).
--
-- Runners of the previous release lock the row through this function; they would not
-- exclude runners that take the advisory locks. Dropping it makes them fail (and retry)
-- until they are upgraded, rather than apply a partition alongside a new runner.
DROP FUNCTION lock_projection_partition(text, integer, text[]);

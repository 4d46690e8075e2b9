-- Starting a projection batch in one round trip: lock the partition's row (waiting for a
-- batch of the same partition in another transaction to end), then read the versions the
-- projection has seen of the batch's streams. The read must see what that other batch
-- committed: in a VOLATILE PL/pgSQL function each statement takes a fresh snapshot (at
-- READ COMMITTED), taken here after the lock is held. A single SQL statement would read
-- with the snapshot taken before it waited. The function runs with the search_path of
-- this migration (the store's schema), so the caller may point its own search_path at a
-- projection's schema without changing which tables are meant here.
CREATE FUNCTION lock_projection_partition(
    p_projection text,
    p_partition integer,
    p_streams text[],
    OUT locked_transaction bigint,
    OUT locked_position bigint,
    OUT locked_events bigint,
    OUT seen_streams text[],
    OUT seen_versions bigint[],
    OUT seen_parked boolean[]
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO projection_partitions AS p (projection, partition) VALUES (p_projection, p_partition)
    ON CONFLICT ON CONSTRAINT projection_partitions_pkey DO UPDATE SET updated_at = p.updated_at
    RETURNING p.transaction_id, p.position, p.events INTO locked_transaction, locked_position, locked_events;
    SELECT coalesce(array_agg(s.stream_id), '{}'), coalesce(array_agg(s.version), '{}'),
           coalesce(array_agg(s.parked), '{}')
      INTO seen_streams, seen_versions, seen_parked
      FROM unnest(p_streams) AS u(id)
      CROSS JOIN LATERAL (
          SELECT ps.stream_id, ps.version, ps.parked FROM projection_streams ps
          WHERE ps.projection = p_projection AND ps.stream_id = u.id LIMIT 1
      ) AS s;
END
$$;

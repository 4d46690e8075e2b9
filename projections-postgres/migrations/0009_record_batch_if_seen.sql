-- Recording a batch that was applied before its check, in the round trip of its COMMIT.
-- The projection runner sends `SELECT record_batch_if_seen(...)`, `RELEASE SAVEPOINT` and
-- `COMMIT` as one simple query: the transaction then holds its writes (and the log horizon
-- the relay reads below) for one round trip less. Nothing can wait for the check's answer
-- before the COMMIT, so a batch whose streams were not last seen where it expected (a
-- redelivery, a gap, a parked stream) writes nothing and fails with SQLSTATE TM001: the
-- rest of the query does not run, and the runner returns to the batch's savepoint and takes
-- the batch again with the check first. Such refusals are rare (redeliveries come after a
-- restart) and show in the server's log as errors.
--
-- A function keeps its statements' plans for the session, where one statement sent with its
-- values written out would be planned on every call. The plans are generic: one made for a
-- call's arrays (their lengths in sight) looks cheaper than the generic one, and would be
-- made again for every call. The function runs with this migration's search_path (the
-- store's schema), whatever the caller's.
CREATE FUNCTION record_batch_if_seen(
    p_projection text,
    p_partition integer,
    p_streams text[],
    p_versions bigint[],
    p_parked boolean[],
    p_expected bigint[],
    p_transaction bigint,
    p_position bigint,
    p_events bigint
)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_as_expected boolean;
BEGIN
    IF cardinality(p_streams) <> cardinality(p_expected) THEN
        RAISE EXCEPTION 'a batch names % streams and % expected versions',
            cardinality(p_streams), cardinality(p_expected) USING ERRCODE = 'TM001';
    END IF;
    SELECT coalesce(bool_and(coalesce(s.version, 0) = u.prev AND NOT coalesce(s.parked, false)), true)
      INTO v_as_expected
      FROM unnest(p_streams, p_expected) AS u(id, prev)
      LEFT JOIN LATERAL (
          SELECT ps.version, ps.parked FROM projection_streams ps
          WHERE ps.projection = p_projection AND ps.stream_id = u.id LIMIT 1
      ) AS s ON true;
    IF NOT v_as_expected THEN
        RAISE EXCEPTION 'a batch of projection % applied before its check met a stream not last seen where it expected',
            p_projection USING ERRCODE = 'TM001';
    END IF;
    INSERT INTO projection_streams AS s (projection, stream_id, version, parked)
    SELECT p_projection, u.id, u.v, u.p FROM unnest(p_streams, p_versions, p_parked) AS u(id, v, p)
    ON CONFLICT (projection, stream_id) DO UPDATE SET version = EXCLUDED.version, parked = EXCLUDED.parked;
    INSERT INTO projection_partitions AS pp (projection, partition, transaction_id, position, events)
    VALUES (p_projection, p_partition, p_transaction, p_position, p_events)
    ON CONFLICT (projection, partition) DO UPDATE SET
        transaction_id = CASE WHEN (pp.transaction_id, pp.position) < (p_transaction, p_position)
                              THEN p_transaction ELSE pp.transaction_id END,
        position = CASE WHEN (pp.transaction_id, pp.position) < (p_transaction, p_position)
                        THEN p_position ELSE pp.position END,
        events = pp.events + p_events,
        updated_at = now();
END
$$;

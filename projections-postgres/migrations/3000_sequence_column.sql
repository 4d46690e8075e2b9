-- A log position is the pair (transaction_id, sequence): the columns holding its second
-- half take the name they have in the events table and in the code (`position` named the
-- whole pair everywhere else). `record_batch_if_seen` is made again over the renamed
-- column, its parameter renamed with it.
ALTER TABLE projection_partitions RENAME COLUMN position TO sequence;
ALTER TABLE dead_letters RENAME COLUMN position TO sequence;

DROP FUNCTION record_batch_if_seen(
    text, integer, text[], bigint[], boolean[], bigint[], bigint, bigint, bigint, bigint, bigint
);

CREATE FUNCTION record_batch_if_seen(
    p_projection text,
    p_partition integer,
    p_streams text[],
    p_versions bigint[],
    p_parked boolean[],
    p_expected bigint[],
    p_transaction bigint,
    p_sequence bigint,
    p_events bigint,
    p_feed_epoch bigint,
    p_feed_sequence bigint
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
    INSERT INTO projection_partitions AS pp
        (projection, partition, transaction_id, sequence, events, feed_epoch, feed_sequence)
    VALUES (p_projection, p_partition, p_transaction, p_sequence, p_events, p_feed_epoch, p_feed_sequence)
    ON CONFLICT (projection, partition) DO UPDATE SET
        transaction_id = CASE WHEN (pp.transaction_id, pp.sequence) < (p_transaction, p_sequence)
                              THEN p_transaction ELSE pp.transaction_id END,
        sequence = CASE WHEN (pp.transaction_id, pp.sequence) < (p_transaction, p_sequence)
                        THEN p_sequence ELSE pp.sequence END,
        events = pp.events + p_events,
        feed_epoch = coalesce(p_feed_epoch, pp.feed_epoch),
        feed_sequence = CASE WHEN p_feed_epoch IS NULL THEN pp.feed_sequence
                             WHEN pp.feed_epoch = p_feed_epoch THEN greatest(pp.feed_sequence, p_feed_sequence)
                             ELSE p_feed_sequence END,
        updated_at = now();
END
$$;

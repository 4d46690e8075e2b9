-- One tenant per stream, checked once per statement instead of once per event.
--
-- Migration 1004's row trigger ran a PL/pgSQL function and a primary-key probe for every
-- inserted event: for an append of 100 events, 100 calls, which nearly doubled the
-- server's time for the append. The rule is unchanged; it is now checked by
--
-- 1. migration 1005's row trigger, now called (WHEN clause) only for a tombstone without
--    a tenant, which it gives its stream's tenant. A stream's first event needs no check:
--    it is its stream's reference, and a version 1 of a stream that exists is refused by
--    the stream-version key (a writer restricted by row-level security, which sees no
--    event of another tenant's stream and so writes version 1 to it, is told by the store
--    that the stream is another tenant's: it cannot see what took the version);
-- 2. a statement trigger after each insert, which compares the tenants of the rows the
--    statement inserted (a transition table, where the generated `tenant` column is
--    computed) with the first event of each of their streams, one probe per stream and
--    tenant. The first event may be one of the statement's own rows (a new stream), so an
--    append that mixes tenants on a new stream is refused too.
--
-- Both run as the tables' owner (SECURITY DEFINER), so that the probe sees every tenant's
-- events when the inserting role is restricted by row-level security. The error is the
-- same (SQLSTATE TM002) and undoes the whole statement.

CREATE FUNCTION events_check_stream_tenants() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    clash record;
BEGIN
    -- Events at version 1 are their streams' references. A lateral probe per stream and tenant: a plain join let the
    -- planner, which knows nothing of the transition table's size, scan the whole table.
    SELECT n.stream_id, f.tenant AS first_tenant, n.tenant AS new_tenant INTO clash
      FROM (SELECT DISTINCT i.stream_id, i.tenant FROM inserted_events i WHERE i.stream_version > 1) AS n
      CROSS JOIN LATERAL (SELECT e.tenant FROM events e
                           WHERE e.stream_id = n.stream_id AND e.stream_version = 1 LIMIT 1) AS f
     WHERE f.tenant IS DISTINCT FROM n.tenant
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stream % belongs to tenant %, an event of tenant % is refused',
            clash.stream_id, coalesce(clash.first_tenant, '(none)'), coalesce(clash.new_tenant, '(none)')
            USING ERRCODE = 'TM002';
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER events_stream_tenant ON events;

CREATE TRIGGER events_stream_tenant
    BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.event_type = '_Tombstone' AND NEW.metadata ->> 'tenant' IS NULL)
    EXECUTE FUNCTION events_keep_stream_tenant();

CREATE TRIGGER events_stream_tenants
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_stream_tenants();

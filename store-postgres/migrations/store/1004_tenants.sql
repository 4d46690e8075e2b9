-- Tenants. An event's tenant is the `tenant` key of its `metadata` (absent: no tenant).
-- A stream belongs to the tenant of its first event, or to no tenant; every later event
-- must carry the same one. The append statements are unchanged: the tenant is derived
-- from the metadata they already write, and a trigger checks the rule.

-- The tenant as a column of its own, for indexes, filters and row-level security.
-- Adding a stored generated column rewrites the table once.
ALTER TABLE events ADD COLUMN tenant text GENERATED ALWAYS AS (metadata ->> 'tenant') STORED;

-- A tenant's part of the global log, in log order (only events that have a tenant).
CREATE INDEX events_tenant_log_idx ON events (tenant, transaction_id, sequence) WHERE tenant IS NOT NULL;

-- One tenant per stream: each inserted event is compared with its stream's first event
-- (one probe of the primary key). A first event of a new stream inserted earlier in the
-- same statement is seen too (a row trigger sees the rows its statement wrote before).
-- Two appends racing to create one stream still meet on the primary key, as before.
-- SECURITY DEFINER: the probe sees every tenant's events even when the inserting role
-- is restricted by row-level security (below), so that a restricted writer is refused
-- with this error and not by a version clash. The search path is the schema the
-- migration runs in.
CREATE FUNCTION events_keep_stream_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    first_tenant text;
    -- Generated columns are not computed yet in a BEFORE trigger: read the metadata.
    new_tenant text := NEW.metadata ->> 'tenant';
BEGIN
    SELECT e.tenant INTO first_tenant FROM events e
     WHERE e.stream_id = NEW.stream_id AND e.stream_version = 1;
    IF FOUND AND first_tenant IS DISTINCT FROM new_tenant THEN
        RAISE EXCEPTION 'stream % belongs to tenant %, an event of tenant % is refused',
            NEW.stream_id, coalesce(first_tenant, '(none)'), coalesce(new_tenant, '(none)')
            USING ERRCODE = 'TM002';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_stream_tenant
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_keep_stream_tenant();

-- Row-level security. Enabled, not forced: the tables' owner (the role that migrates and
-- runs the store, relay and projections) sees and writes every row, as before. A role
-- that does not own the tables and is not a superuser sees, and may write, only the
-- events of the tenant named by the setting `tidemark.tenant` of its session or
-- transaction; with the setting unset or empty it sees no event at all.
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_of_the_tenant ON events
    USING (tenant = current_setting('tidemark.tenant', true))
    WITH CHECK (tenant = current_setting('tidemark.tenant', true));

-- Snapshots and handled commands have no tenant column: such a role sees those of the
-- streams whose events it sees (the probe of `events` is itself under the policy above).
ALTER TABLE snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY snapshots_of_the_tenant ON snapshots
    USING (EXISTS (SELECT 1 FROM events e WHERE e.stream_id = snapshots.stream_id AND e.stream_version = 1))
    WITH CHECK (EXISTS (SELECT 1 FROM events e WHERE e.stream_id = snapshots.stream_id AND e.stream_version = 1));

ALTER TABLE commands ENABLE ROW LEVEL SECURITY;
CREATE POLICY commands_of_the_tenant ON commands FOR SELECT
    USING (EXISTS (SELECT 1 FROM events e WHERE e.stream_id = commands.stream_id AND e.stream_version = 1));
-- A command is recorded in the statement that writes its stream's first events, which the
-- check above could not see yet; the events' own check and trigger guard that write.
CREATE POLICY commands_recorded ON commands FOR INSERT WITH CHECK (true);

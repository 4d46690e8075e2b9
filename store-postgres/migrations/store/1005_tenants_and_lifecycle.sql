-- Tenants meet the stream lifecycle.
--
-- 1. A tombstone that carries no tenant takes its stream's: deleting a tenant's stream
--    needs no knowledge of its tenant (`EventStore::tombstone` writes empty metadata),
--    and the tombstone row stays visible to that tenant's restricted roles, whose appends
--    must see it to be refused as deleted.
-- 2. Archived events keep their metadata, and so their tenant: the archive gets the same
--    tenant column and row-level security as `events`, so a role restricted to one tenant
--    reads none of another tenant's archived events. The archiving statement names its
--    columns, so the generated column needs no change there.

CREATE OR REPLACE FUNCTION events_keep_stream_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    first_tenant text;
    -- Generated columns are not computed yet in a BEFORE trigger: read the metadata.
    new_tenant text := NEW.metadata ->> 'tenant';
BEGIN
    SELECT e.tenant INTO first_tenant FROM events e
     WHERE e.stream_id = NEW.stream_id AND e.stream_version = 1;
    IF FOUND AND new_tenant IS NULL AND first_tenant IS NOT NULL AND NEW.event_type = '_Tombstone' THEN
        NEW.metadata := jsonb_set(coalesce(NEW.metadata, '{}'::jsonb), '{tenant}', to_jsonb(first_tenant));
        new_tenant := first_tenant;
    END IF;
    IF FOUND AND first_tenant IS DISTINCT FROM new_tenant THEN
        RAISE EXCEPTION 'stream % belongs to tenant %, an event of tenant % is refused',
            NEW.stream_id, coalesce(first_tenant, '(none)'), coalesce(new_tenant, '(none)')
            USING ERRCODE = 'TM002';
    END IF;
    RETURN NEW;
END;
$$;

ALTER TABLE archived_events ADD COLUMN tenant text GENERATED ALWAYS AS (metadata ->> 'tenant') STORED;

ALTER TABLE archived_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY archived_events_of_the_tenant ON archived_events
    USING (tenant = current_setting('tidemark.tenant', true))
    WITH CHECK (tenant = current_setting('tidemark.tenant', true));

-- Lookups by _id served by an index in FerretDB 1.24 on PostgreSQL (the production topology, scripts/topology.sh; the
-- embedded stack's SQLite counterpart is scripts/ferretdb-indexes.ts). Run with psql on FerretDB's database before
-- FerretDB starts; idempotent. See README.md "Production topology".
--
-- FerretDB reads a document by _id (findOne, and the read before an update or a delete) with
--   SELECT _jsonb FROM "<db>"."<table>" WHERE _jsonb->$1 @> $2        ($1 = '_id', $2 = the id as JSON)
-- Its own unique index is a btree on (_jsonb->'_id'), which cannot serve `@>`: every lookup scanned the collection
-- (FerretDB/FerretDB#4646). Two things make it an index scan:
--   1. a GIN index on the same expression, (_jsonb->'_id') jsonb_path_ops;
--   2. custom plans: the key '_id' is a bind parameter, so a generic plan of the prepared statement holds
--      `_jsonb -> $1`, which matches no index; with plan_cache_mode = auto a connection keeps such a plan once it has
--      been chosen. force_custom_plan for the database applies to connections opened after this script.
-- Measured at 20,000 documents: findOne by _id 13 ms -> 1.6 ms, updateOne 14-20 ms -> 3.4 ms.
-- `_id: {$in: [...]}` is not pushed down to PostgreSQL at all (FerretDB reads the whole table); no index helps it.

DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
END
$$;

-- Adds the index to one FerretDB collection table: <table>__id_gin, the name shortened to 63 characters keeping the
-- table's hash suffix. Used by the event trigger and for the tables that exist already, below.
CREATE OR REPLACE FUNCTION public.imodelsync_add_id_gin(tbl regclass) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  name text := (SELECT relname FROM pg_class WHERE oid = tbl);
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb->''_id'') jsonb_path_ops)',
                 CASE WHEN length(name) + 8 <= 63 THEN name || '__id_gin'
                      ELSE left(name, 46) || right(name, 9) || '__id_gin' END,
                 tbl);
END
$fn$;

-- Tables FerretDB creates later (collections are created lazily, by their first write): the index is added in the
-- same transaction as FerretDB's CREATE TABLE.
CREATE OR REPLACE FUNCTION public.imodelsync_id_gin_index() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  metadata regclass;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' AND object_type = 'table'
  LOOP
    -- a FerretDB collection: a table with a jsonb column _jsonb in a schema that holds FerretDB's metadata table
    metadata := to_regclass(quote_ident(r.schema_name) || '._ferretdb_database_metadata');
    CONTINUE WHEN metadata IS NULL OR r.objid = metadata;
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_attribute
                              WHERE attrelid = r.objid AND attname = '_jsonb' AND atttypid = 'jsonb'::regtype);
    PERFORM public.imodelsync_add_id_gin(r.objid::regclass);
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS imodelsync_id_gin_index;
CREATE EVENT TRIGGER imodelsync_id_gin_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.imodelsync_id_gin_index();

-- Tables that exist already (a topology started before): each collection listed in FerretDB's metadata.
DO $$
DECLARE
  s record;
  t record;
  tbl regclass;
BEGIN
  FOR s IN SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relname = '_ferretdb_database_metadata' AND c.relkind = 'r'
  LOOP
    FOR t IN EXECUTE format('SELECT _jsonb->>''table'' AS name FROM %I._ferretdb_database_metadata', s.nspname)
    LOOP
      tbl := to_regclass(quote_ident(s.nspname) || '.' || quote_ident(t.name));
      CONTINUE WHEN tbl IS NULL;
      PERFORM public.imodelsync_add_id_gin(tbl);
    END LOOP;
  END LOOP;
END
$$;

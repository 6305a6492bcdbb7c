-- GIN twins for FerretDB's indexes, installed by deploy/scripts/infra.sh into FerretDB's
-- PostgreSQL database and into template1 (so databases made later, such as the tests', have it).
--
-- FerretDB 1.24 stores each collection as a table with one jsonb column, `_jsonb`, and builds
-- each MongoDB index as a btree on expressions such as `(_jsonb -> 'customerEmail')`. It pushes
-- an equality filter down as `_jsonb -> $1 @> $2`, which no btree can serve: every lookup would
-- scan the table. A GIN index on the same expression serves exactly that operator (once the
-- planner folds $1, which custom plans do: FerretDB's URL sets plan_cache_mode), so each
-- top-level field that a FerretDB index leads with gets one, made and dropped with the indexes
-- by the event triggers below. `fastupdate = off`: a pending list would make every lookup scan it.
-- Safe to run again; running it also twins the indexes that already exist.

CREATE OR REPLACE FUNCTION ferretdb_twins_reconcile(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  expressions text[];
  wanted_names text[];
  stale name;
  target_schema name := (SELECT nspname FROM pg_namespace
                          WHERE oid = (SELECT relnamespace FROM pg_class WHERE oid = target));
BEGIN
  -- The leading field of each btree index of the table, where it is a top-level one, and its
  -- twin's name. Only the leading field: an equality on a later field alone is no more
  -- served by a MongoDB index than it is here.
  SELECT coalesce(array_agg(expression), '{}'), coalesce(array_agg(twin), '{}')
    INTO expressions, wanted_names
    FROM (
      SELECT DISTINCT expression,
             format('%s_%s_gin', left(table_class.relname, 40), left(md5(expression), 12)) AS twin
        FROM pg_index index_row
        JOIN pg_class index_class ON index_class.oid = index_row.indexrelid
        JOIN pg_am method ON method.oid = index_class.relam AND method.amname = 'btree'
        JOIN pg_class table_class ON table_class.oid = index_row.indrelid
        CROSS JOIN LATERAL pg_get_indexdef(index_row.indexrelid, 1, true) AS expression
       WHERE index_row.indrelid = target
         AND expression ~ '^\(?_jsonb -> ''[^'']*''::text\)?$'
    ) fields;
  FOR i IN 1 .. cardinality(wanted_names) LOOP
    CONTINUE WHEN to_regclass(format('%I.%I', target_schema, wanted_names[i])) IS NOT NULL;
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
      wanted_names[i], target, expressions[i]);
  END LOOP;
  -- Twins whose field no btree index of the table leads with any more.
  FOR stale IN
    SELECT twin_class.relname
      FROM pg_index twin_row
      JOIN pg_class twin_class ON twin_class.oid = twin_row.indexrelid
      JOIN pg_am method ON method.oid = twin_class.relam AND method.amname = 'gin'
     WHERE twin_row.indrelid = target
       AND twin_class.relname ~ '_[0-9a-f]{12}_gin$'
       AND twin_class.relname <> ALL (wanted_names)
  LOOP
    -- IF EXISTS: this drop fires the trigger again, whose reconciling may drop it first.
    EXECUTE format('DROP INDEX IF EXISTS %I.%I', target_schema, stale);
  END LOOP;
END $$;

-- The tables FerretDB stores collections in: those with a jsonb `_jsonb` column.
CREATE OR REPLACE FUNCTION ferretdb_twins_tables(in_schema name DEFAULT NULL)
RETURNS SETOF regclass LANGUAGE sql STABLE AS $$
  SELECT attribute.attrelid::regclass
    FROM pg_attribute attribute
    JOIN pg_class table_class ON table_class.oid = attribute.attrelid AND table_class.relkind = 'r'
    JOIN pg_namespace schema ON schema.oid = table_class.relnamespace
   WHERE attribute.attname = '_jsonb' AND attribute.atttypid = 'jsonb'::regtype
     AND NOT attribute.attisdropped
     AND schema.nspname NOT IN ('pg_catalog', 'information_schema')
     AND (in_schema IS NULL OR schema.nspname = in_schema)
$$;

CREATE OR REPLACE FUNCTION ferretdb_twins_on_create() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  created record;
BEGIN
  FOR created IN
    SELECT DISTINCT index_row.indrelid AS target
      FROM pg_event_trigger_ddl_commands() command
      JOIN pg_index index_row ON index_row.indexrelid = command.objid
      JOIN pg_class index_class ON index_class.oid = index_row.indexrelid
      JOIN pg_am method ON method.oid = index_class.relam AND method.amname = 'btree'
     WHERE command.object_type = 'index'
       AND index_row.indrelid IN (SELECT ferretdb_twins_tables())
  LOOP
    PERFORM ferretdb_twins_reconcile(created.target);
  END LOOP;
END $$;

-- A dropped index no longer names its table, so every table of its schema is reconciled.
CREATE OR REPLACE FUNCTION ferretdb_twins_on_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  schema_name name;
BEGIN
  FOR schema_name IN
    SELECT DISTINCT dropped.schema_name FROM pg_event_trigger_dropped_objects() dropped
     WHERE dropped.object_type = 'index'
  LOOP
    PERFORM ferretdb_twins_reconcile(target) FROM ferretdb_twins_tables(schema_name) AS target;
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS ferretdb_twins_on_create;
CREATE EVENT TRIGGER ferretdb_twins_on_create ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION ferretdb_twins_on_create();
DROP EVENT TRIGGER IF EXISTS ferretdb_twins_on_drop;
CREATE EVENT TRIGGER ferretdb_twins_on_drop ON sql_drop
  WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION ferretdb_twins_on_drop();

DO $$ BEGIN
  PERFORM ferretdb_twins_reconcile(target) FROM ferretdb_twins_tables() AS target;
END $$;

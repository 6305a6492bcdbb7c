-- GIN indexes for FerretDB's indexes, installed by deploy/scripts/infra.sh into FerretDB's
-- PostgreSQL database and into template1 (so databases made later, such as the tests', have it).
--
-- FerretDB 1.24 stores each collection as a table with one jsonb column, `_jsonb`, and builds
-- each MongoDB index as a btree on expressions such as `(_jsonb -> 'customerEmail')`. It pushes
-- an equality filter down as `_jsonb -> $1 @> $2`, which no btree can serve: every lookup would
-- scan the table. A GIN index on the same expression serves exactly that operator (once the
-- planner folds $1, which custom plans do: FerretDB's URL sets plan_cache_mode). So:
-- - a non-unique btree, which then serves no query (FerretDB pushes no sort or range down) and
--   costs every write, is replaced by a GIN index of the same name on its leading field, where
--   that is a top-level one: FerretDB knows its indexes from its own metadata and drops one by
--   name, so the replacement goes as the btree would have;
-- - a unique btree stays (it makes the duplicate-key errors) and gets a GIN twin, made and
--   dropped with it.
-- The event triggers below do both as FerretDB creates and drops indexes. `fastupdate = off`: a
-- pending list would make every lookup scan it. Safe to run again; running it also converts
-- and twins the indexes that already exist.

-- The btree indexes of `target` that lead with a top-level field, with that field's
-- expression (`_jsonb -> 'field'`).
CREATE OR REPLACE FUNCTION ferretdb_twins_btrees(target regclass)
RETURNS TABLE (index_name name, field_expression text, is_unique boolean)
LANGUAGE sql STABLE AS $$
  SELECT index_class.relname, leading_column, index_row.indisunique
    FROM pg_index index_row
    JOIN pg_class index_class ON index_class.oid = index_row.indexrelid
    JOIN pg_am method ON method.oid = index_class.relam AND method.amname = 'btree'
    CROSS JOIN LATERAL pg_get_indexdef(index_row.indexrelid, 1, true) AS leading_column
   WHERE index_row.indrelid = target
     AND leading_column ~ '^\(?_jsonb -> ''[^'']*''::text\)?$'
$$;

CREATE OR REPLACE FUNCTION ferretdb_twins_reconcile(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  expressions text[];
  wanted_names text[];
  stale name;
  replaced record;
  target_table name := (SELECT relname FROM pg_class WHERE oid = target);
  target_schema name := (SELECT nspname FROM pg_namespace
                          WHERE oid = (SELECT relnamespace FROM pg_class WHERE oid = target));
BEGIN
  -- The triggers pass over the index commands made here: this call sees the table through.
  PERFORM set_config('ferretdb_twins.reconciling', 'on', true);
  FOR replaced IN SELECT * FROM ferretdb_twins_btrees(target) WHERE NOT is_unique LOOP
    EXECUTE format('DROP INDEX %I.%I', target_schema, replaced.index_name);
    EXECUTE format(
      'CREATE INDEX %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
      replaced.index_name, target, replaced.field_expression);
  END LOOP;
  -- The field of each unique btree index of the table, and its twin's name.
  SELECT coalesce(array_agg(field_expression), '{}'), coalesce(array_agg(twin), '{}')
    INTO expressions, wanted_names
    FROM (
      SELECT DISTINCT field_expression,
             format('%s_%s_gin', left(target_table, 40), left(md5(field_expression), 12)) AS twin
        FROM ferretdb_twins_btrees(target)
       WHERE is_unique
    ) fields;
  FOR i IN 1 .. cardinality(wanted_names) LOOP
    CONTINUE WHEN to_regclass(format('%I.%I', target_schema, wanted_names[i])) IS NOT NULL;
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
      wanted_names[i], target, expressions[i]);
  END LOOP;
  -- Twins whose unique index is gone.
  FOR stale IN
    SELECT twin_class.relname
      FROM pg_index twin_row
      JOIN pg_class twin_class ON twin_class.oid = twin_row.indexrelid
      JOIN pg_am method ON method.oid = twin_class.relam AND method.amname = 'gin'
     WHERE twin_row.indrelid = target
       AND twin_class.relname ~ '_[0-9a-f]{12}_gin$'
       AND twin_class.relname <> ALL (wanted_names)
  LOOP
    EXECUTE format('DROP INDEX %I.%I', target_schema, stale);
  END LOOP;
  PERFORM set_config('ferretdb_twins.reconciling', 'off', true);
END $$;

-- Whether a trigger fires inside a reconciliation's own index commands.
CREATE OR REPLACE FUNCTION ferretdb_twins_reconciling() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('ferretdb_twins.reconciling', true), '') = 'on'
$$;

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
  IF ferretdb_twins_reconciling() THEN
    RETURN;
  END IF;
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
  IF ferretdb_twins_reconciling() THEN
    RETURN;
  END IF;
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

-- FerretDB v1's storage, tuned so that its filters can use an index (applied by scripts/services.sh
-- to FerretDB's PostgreSQL database at every `up`; idempotent).
--
-- FerretDB v1 keeps each document in a jsonb column `_jsonb` and turns a MongoDB index on `field`
-- into a btree on `(_jsonb -> 'field')`, but it pushes an equality filter `{field: value}` down as
-- `_jsonb -> 'field' @> value`, which a btree cannot serve: every `find_one({"_id": x})`,
-- `update_one` and upsert scanned the whole collection, and the cost grew with the collection. A
-- GIN index with jsonb_path_ops on the same expression does serve `@>`. Every index FerretDB
-- creates gets such a companion on its first key (an event trigger; in the append-only audit and
-- telemetry collections only for `expires_on`), and custom plans keep the
-- parameter `'field'` a constant the planner can match against the index expression.
--
-- A real MongoDB needs none of this: the application uses plain pymongo and the same indexes.

SET client_min_messages = warning;  -- not a NOTICE per companion that already exists, at every `up`

ALTER DATABASE :"db" SET plan_cache_mode = force_custom_plan;

CREATE OR REPLACE FUNCTION brokage_ferretdb_gin_companion(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    info record;
    field text;
BEGIN
    SELECT n.nspname AS schema_name, t.relname AS table_name, am.amname AS method,
           pg_get_indexdef(index_oid, 1, true) AS first_key
      INTO info
      FROM pg_index i
      JOIN pg_class ix ON ix.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ix.relam
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE i.indexrelid = index_oid;
    IF NOT FOUND OR info.method <> 'btree' OR info.table_name LIKE '\_ferretdb%' THEN
        RETURN;
    END IF;
    field := substring(info.first_key FROM '^\(?_jsonb -> ''([^'']+)''::text\)?$');
    IF field IS NULL THEN
        RETURN;  -- a nested path or a plain column: FerretDB does not push those down
    END IF;
    -- The append-only trails (an entry per event, a document per request) are written far more
    -- than they are searched: a GIN per index would cost every insert more than it saves. Their
    -- expiry sweep's `expires_on` is the exception (brokage.documents.expired_delete).
    IF (info.table_name LIKE 'audit\_logs\_%' OR info.table_name LIKE 'telemetry\_%') AND field <> 'expires_on' THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((_jsonb -> %L) jsonb_path_ops)',
        left(info.table_name, 40) || '_' || left(md5(field), 12) || '_gin',
        info.schema_name, info.table_name, field
    );
END;
$$;

CREATE OR REPLACE FUNCTION brokage_ferretdb_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
        PERFORM brokage_ferretdb_gin_companion(command.objid);
    END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS brokage_ferretdb_gin_companions;
CREATE EVENT TRIGGER brokage_ferretdb_gin_companions ON ddl_command_end
    WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION brokage_ferretdb_on_create_index();

-- The collections FerretDB made before this was installed.
SELECT brokage_ferretdb_gin_companion(i.indexrelid)
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND n.nspname NOT LIKE 'pg\_%';

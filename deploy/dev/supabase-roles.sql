-- The roles a Supabase project has before any migration runs, for a local cluster: local trials
-- (deploy/dev/setup.sh) and the tests apply it once per cluster, as the cluster's superuser, the
-- way Supabase provisions a project. NEVER run it against the platform's real database.
--
--   psql "$SUPERUSER_URL" -v owner_password=... -v etl_password=... -f deploy/dev/supabase-roles.sql
--
--   anon, authenticated, service_role  the API roles (NOLOGIN; service_role has BYPASSRLS)
--   platform_owner   stands in for Supabase's `postgres`: the role that owns the platform's
--                    tables and runs migrations. Not a superuser: CREATEROLE, CREATEDB,
--                    BYPASSRLS, a member of the API roles, allowed to end other sessions and to
--                    see what they run (pg_signal_backend, pg_read_all_stats).
--   platform_etl     the ETL runner with the service key: logs in and acts as service_role
--                    (connect with options='-c role=service_role', as Supabase's API does).
--
-- Safe to run again, also from two sessions at once: roles belong to the whole cluster.

\set ON_ERROR_STOP on
SELECT set_config('alertd.owner_password', :'owner_password', false),
       set_config('alertd.etl_password', :'etl_password', false) \gset

DO $$
DECLARE
  spec record;
BEGIN
  FOR spec IN
    SELECT * FROM (VALUES
      ('anon', 'NOLOGIN NOINHERIT', NULL),
      ('authenticated', 'NOLOGIN NOINHERIT', NULL),
      ('service_role', 'NOLOGIN NOINHERIT BYPASSRLS', NULL),
      ('platform_owner', 'LOGIN NOSUPERUSER INHERIT CREATEROLE CREATEDB BYPASSRLS', current_setting('alertd.owner_password')),
      ('platform_etl', 'LOGIN NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOBYPASSRLS', current_setting('alertd.etl_password'))
    ) AS roles (name, attributes, password)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = spec.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', spec.name, spec.attributes);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
      END;
    END IF;
    IF spec.password IS NOT NULL THEN
      IF length(spec.password) < 12 THEN
        RAISE EXCEPTION 'give -v owner_password=... and -v etl_password=..., at least 12 characters each';
      END IF;
      EXECUTE format('ALTER ROLE %I %s PASSWORD %L', spec.name, spec.attributes, spec.password);
    END IF;
  END LOOP;
END
$$;

GRANT anon, authenticated, service_role, pg_signal_backend, pg_read_all_stats TO platform_owner;
GRANT service_role TO platform_etl;

-- The passwords must not stay in this session's settings.
SELECT set_config('alertd.owner_password', '', false), set_config('alertd.etl_password', '', false) \gset

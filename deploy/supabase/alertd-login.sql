-- Creates the role alertd logs in as, a member of alertd_dispatcher (whose privileges the
-- migration 20251125_alertd_dispatcher_role.sql sets in each database), or sets its password
-- if it exists. Run it once per cluster, as a role with CREATEROLE (postgres on Supabase):
--
--   psql "$ADMIN_DATABASE_URL" -v user=alertd -v password="$ALERTD_DB_PASSWORD" -f deploy/supabase/alertd-login.sql
--
-- then give alertd   postgresql://alertd:<password>@<host>:<port>/<database>   as its
-- ALERTD_DATABASE_URL (on Supabase, the pooler's session mode or a direct connection: see
-- docs/database.md). The role has no other privilege: no superuser, no BYPASSRLS.
--
-- The password reaches the server in the first SELECT below (psql cannot put a variable inside
-- the DO block): with log_statement = 'all' it would be logged there. The role stores only its
-- SCRAM hash, and the setting is cleared at the end.

\set ON_ERROR_STOP on
SELECT set_config('alertd.login_user', :'user', false), set_config('alertd.login_password', :'password', false) \gset

DO $$
DECLARE
  login text := current_setting('alertd.login_user');
  secret text := current_setting('alertd.login_password');
BEGIN
  IF login IS NULL OR login = '' OR secret IS NULL OR length(secret) < 12 THEN
    RAISE EXCEPTION 'give -v user=<name> and -v password=<at least 12 characters>';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alertd_dispatcher') THEN
    BEGIN
      CREATE ROLE alertd_dispatcher NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login) THEN
    -- Only a superuser may name SUPERUSER or BYPASSRLS in ALTER ROLE, even to turn them off
    -- (Supabase's postgres is not one): check them instead.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login AND (rolsuper OR rolbypassrls)) THEN
      RAISE EXCEPTION 'role % is a superuser or has BYPASSRLS; alertd must not log in as it', login
        USING HINT = 'Give -v user=<name> a name of its own, such as alertd.';
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE INHERIT PASSWORD %L', login, secret);
  ELSE
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT PASSWORD %L', login, secret);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      EXECUTE format('ALTER ROLE %I PASSWORD %L', login, secret);
    END;
  END IF;
  EXECUTE format('GRANT alertd_dispatcher TO %I', login);
END
$$;

-- The password must not stay in this session's settings.
SELECT set_config('alertd.login_password', '', false) \gset

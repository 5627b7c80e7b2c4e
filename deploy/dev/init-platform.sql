-- The ETL platform's existing schema, as a Supabase project already has it, for local trials and
-- tests of alertd. NEVER run this against the platform's real database: it is applied by
-- `alertd db init-platform`, which refuses when these tables already exist.
--
-- It also creates the few Supabase pieces that plain PostgreSQL lacks: the roles anon,
-- authenticated and service_role (when a superuser runs it; deploy/dev/supabase-roles.sql makes
-- them beforehand, with a non-superuser owner like Supabase's `postgres`), the schema auth with
-- auth.uid() reading the JWT `sub` claim from request.jwt.claims, the extensions uuid-ossp and
-- pgcrypto, and Supabase's default privileges: the API roles get ALL on every table, function and
-- sequence that the role running this (and later the migrations) creates in public, so that
-- row-level security alone decides what they see.

-- Roles are cluster-wide: several databases of one cluster share them, and init-platform may run
-- on two of them at once. A concurrent creator that wins the race makes ours fail with
-- unique_violation (or duplicate_object); either way the role exists, which is all we need.
DO $$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT%s', role_name,
                       CASE WHEN role_name = 'service_role' THEN ' BYPASSRLS' ELSE '' END);
      EXCEPTION WHEN unique_violation OR duplicate_object THEN
        NULL;
      END;
    END IF;
  END LOOP;
END
$$;

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
  )::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
  )::text
$$;

CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  name text NOT NULL,
  created_at timestamp DEFAULT now()
);

CREATE TABLE tenant_users (
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  role text NOT NULL DEFAULT 'member',
  created_at timestamp DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE integration_configs (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  integration_type varchar(50) NOT NULL,
  integration_name varchar(100),
  environment varchar(20) NOT NULL DEFAULT 'production',
  base_url text,
  is_active boolean DEFAULT true,
  connection_status varchar(20) DEFAULT 'not_configured',
  last_connection_test timestamp,
  last_connection_error text,
  configuration_metadata jsonb DEFAULT '{}',
  created_at timestamp DEFAULT now(),
  updated_at timestamp DEFAULT now(),
  created_by uuid,
  updated_by uuid,
  UNIQUE (tenant_id, integration_type, environment)
);

CREATE TABLE integration_sync_configs (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  integration_config_id uuid NOT NULL REFERENCES integration_configs(id) ON DELETE CASCADE,
  endpoint_name varchar(100) NOT NULL,
  endpoint_display_name varchar(200),
  endpoint_url text,
  sync_frequency varchar(20) NOT NULL DEFAULT 'manual',
  is_enabled boolean DEFAULT false,
  filter_criteria jsonb DEFAULT '{}',
  field_mapping jsonb DEFAULT '{}',
  transformation_rules jsonb DEFAULT '{}',
  last_sync_at timestamp,
  last_sync_status varchar(20),
  last_sync_error text,
  next_sync_at timestamp,
  sync_schedule_cron varchar(100),
  average_sync_duration_seconds integer,
  average_records_per_sync integer,
  created_at timestamp DEFAULT now(),
  updated_at timestamp DEFAULT now(),
  UNIQUE (integration_config_id, endpoint_name)
);

CREATE TABLE integration_sync_history (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  integration_config_id uuid NOT NULL REFERENCES integration_configs(id) ON DELETE CASCADE,
  integration_sync_config_id uuid REFERENCES integration_sync_configs(id) ON DELETE SET NULL,
  endpoint_name varchar(100) NOT NULL,
  sync_started_at timestamp NOT NULL,
  sync_completed_at timestamp,
  duration_seconds integer GENERATED ALWAYS AS
    (extract(epoch FROM (sync_completed_at - sync_started_at))::integer) STORED,
  status varchar(20) NOT NULL DEFAULT 'running',
  records_synced integer DEFAULT 0,
  records_failed integer DEFAULT 0,
  records_skipped integer DEFAULT 0,
  error_message text,
  error_details jsonb,
  error_stack_trace text,
  triggered_by varchar(20) NOT NULL DEFAULT 'manual',
  triggered_by_user uuid,
  created_at timestamp DEFAULT now()
);

CREATE INDEX idx_sync_history_config ON integration_sync_history (integration_config_id, sync_started_at DESC);

-- The API roles have ALL on these tables through the default privileges above; row-level
-- security decides which rows.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_sync_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_sync_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_users_own ON tenant_users FOR SELECT TO authenticated
  USING (user_id = auth.uid());

CREATE POLICY tenants_members ON tenants FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM tenant_users tu WHERE tu.tenant_id = tenants.id AND tu.user_id = auth.uid()));

CREATE POLICY integration_configs_members ON integration_configs FOR ALL TO authenticated
  USING (EXISTS (SELECT 1 FROM tenant_users tu
                 WHERE tu.tenant_id = integration_configs.tenant_id AND tu.user_id = auth.uid()))
  WITH CHECK (EXISTS (SELECT 1 FROM tenant_users tu
                      WHERE tu.tenant_id = integration_configs.tenant_id AND tu.user_id = auth.uid()));

CREATE POLICY integration_sync_configs_members ON integration_sync_configs FOR ALL TO authenticated
  USING (EXISTS (SELECT 1 FROM integration_configs ic JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
                 WHERE ic.id = integration_sync_configs.integration_config_id AND tu.user_id = auth.uid()))
  WITH CHECK (EXISTS (SELECT 1 FROM integration_configs ic JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
                      WHERE ic.id = integration_sync_configs.integration_config_id AND tu.user_id = auth.uid()));

CREATE POLICY integration_sync_history_members ON integration_sync_history FOR ALL TO authenticated
  USING (EXISTS (SELECT 1 FROM integration_configs ic JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
                 WHERE ic.id = integration_sync_history.integration_config_id AND tu.user_id = auth.uid()))
  WITH CHECK (EXISTS (SELECT 1 FROM integration_configs ic JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
                      WHERE ic.id = integration_sync_history.integration_config_id AND tu.user_id = auth.uid()));

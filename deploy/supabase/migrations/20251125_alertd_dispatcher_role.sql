-- 20251125_alertd_dispatcher_role.sql
--
-- The privileges alertd needs, and nothing more, held by the group role alertd_dispatcher.
-- alertd logs in as a member of it (deploy/supabase/alertd-login.sql creates one): never as
-- postgres, never as service_role, and without BYPASSRLS.
--
-- What alertd does, and what it is granted for it:
--   * reads an alert's integration (name, type, environment, tenant, alert settings) and sync run
--     to write its messages: SELECT on those columns of integration_configs (not
--     configuration_metadata or base_url, which may hold the integration's credentials) and on
--     integration_sync_history;
--   * claims alerts, records the outcome and gives leases back: SELECT and UPDATE of the
--     dispatcher's columns of integration_alert_history, SELECT and INSERT on
--     integration_alert_attempts;
--   * replays final failures (`alertd replay`): max_attempts among the columns it may update;
--   * writes test alerts (`alertd --test-notification --integration`): INSERT into
--     integration_alert_history, of rows whose origin is 'test' only;
--   * LISTEN needs no privilege; reading alertd.schema_migrations lets it report the schema.
--
-- Row-level security stays on: the policies below admit alertd_dispatcher to every row of these
-- tables (a dispatcher serves every tenant) and no other role gains anything from them.
--
-- Safe to apply more than once. Requires 20251124_alertd_outbox.sql.
-- Undo with deploy/supabase/rollbacks/20251125_alertd_dispatcher_role.rollback.sql.

-- Roles belong to the whole cluster: another database may have created it already, may be
-- creating it right now, or may be rolling its own migration back and dropping it between our
-- check and our first GRANT. That GRANT records a dependency, which locks the role until this
-- transaction ends (a concurrent DROP ROLE then waits and finds it in use), so the role is made
-- and first granted in one step, again if it vanished in between.
DO $$
BEGIN
  FOR attempt IN 1..5 LOOP
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alertd_dispatcher') THEN
        CREATE ROLE alertd_dispatcher NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
      END IF;
      GRANT USAGE ON SCHEMA public TO alertd_dispatcher;
      RETURN;
    EXCEPTION WHEN duplicate_object OR unique_violation OR undefined_object THEN
      IF attempt = 5 THEN
        RAISE;
      END IF;
    END;
  END LOOP;
END
$$;

COMMENT ON ROLE alertd_dispatcher IS
  'alertd''s privileges: read integrations and sync runs, claim and record alerts. Grant it to alertd''s login role.';

GRANT SELECT (id, tenant_id, integration_type, integration_name, environment,
              alert_emails, alert_webhook_url, alert_on_failure, alert_on_success)
  ON integration_configs TO alertd_dispatcher;
GRANT SELECT ON integration_sync_history TO alertd_dispatcher;

GRANT SELECT, INSERT ON integration_alert_history TO alertd_dispatcher;
GRANT UPDATE (delivery_status, delivery_error, sent_at, subject, message, metadata,
              attempt_count, max_attempts, next_attempt_at, last_attempt_at, locked_by, locked_until)
  ON integration_alert_history TO alertd_dispatcher;
GRANT SELECT, INSERT ON integration_alert_attempts TO alertd_dispatcher;

DO $$
BEGIN
  IF to_regnamespace('alertd') IS NOT NULL THEN
    GRANT USAGE ON SCHEMA alertd TO alertd_dispatcher;
    GRANT SELECT ON ALL TABLES IN SCHEMA alertd TO alertd_dispatcher;
  END IF;
END
$$;

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_configs;
CREATE POLICY alertd_dispatcher_read ON integration_configs
  FOR SELECT TO alertd_dispatcher USING (true);

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_sync_history;
CREATE POLICY alertd_dispatcher_read ON integration_sync_history
  FOR SELECT TO alertd_dispatcher USING (true);

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_alert_history;
CREATE POLICY alertd_dispatcher_read ON integration_alert_history
  FOR SELECT TO alertd_dispatcher USING (true);
DROP POLICY IF EXISTS alertd_dispatcher_update ON integration_alert_history;
CREATE POLICY alertd_dispatcher_update ON integration_alert_history
  FOR UPDATE TO alertd_dispatcher USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin = 'test');

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_alert_attempts;
CREATE POLICY alertd_dispatcher_read ON integration_alert_attempts
  FOR SELECT TO alertd_dispatcher USING (true);
DROP POLICY IF EXISTS alertd_dispatcher_record ON integration_alert_attempts;
CREATE POLICY alertd_dispatcher_record ON integration_alert_attempts
  FOR INSERT TO alertd_dispatcher WITH CHECK (true);

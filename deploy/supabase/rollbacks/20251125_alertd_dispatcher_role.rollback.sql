-- Rollback of 20251125_alertd_dispatcher_role.sql: takes alertd_dispatcher's privileges and
-- policies away in this database. The role itself is dropped only when no other database (and
-- no member) still needs it.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_configs;
DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_sync_history;
DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_alert_history;
DROP POLICY IF EXISTS alertd_dispatcher_update ON integration_alert_history;
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_alert_attempts;
DROP POLICY IF EXISTS alertd_dispatcher_record ON integration_alert_attempts;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alertd_dispatcher') THEN
    REVOKE ALL ON integration_configs, integration_sync_history, integration_alert_history,
                  integration_alert_attempts FROM alertd_dispatcher;
    REVOKE ALL (id, tenant_id, integration_type, integration_name, environment, alert_emails,
                alert_webhook_url, alert_on_failure, alert_on_success)
      ON integration_configs FROM alertd_dispatcher;
    REVOKE ALL (delivery_status, delivery_error, sent_at, subject, message, metadata, attempt_count,
                max_attempts, next_attempt_at, last_attempt_at, locked_by, locked_until)
      ON integration_alert_history FROM alertd_dispatcher;
    REVOKE USAGE ON SCHEMA public FROM alertd_dispatcher;
    IF to_regnamespace('alertd') IS NOT NULL THEN
      REVOKE ALL ON ALL TABLES IN SCHEMA alertd FROM alertd_dispatcher;
      REVOKE USAGE ON SCHEMA alertd FROM alertd_dispatcher;
    END IF;
    -- Members are logins such as alertd's: DROP ROLE would silently take their membership away
    -- (and with it alertd's access to every other database of the cluster).
    IF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                WHERE r.rolname = 'alertd_dispatcher') THEN
      RAISE NOTICE 'alertd_dispatcher is kept: roles are still members of it (drop alertd''s login role first to remove it)';
      RETURN;
    END IF;
    BEGIN
      DROP ROLE alertd_dispatcher;
    EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
      RAISE NOTICE 'alertd_dispatcher is kept: other databases or roles still use it';
    -- Roles belong to the whole cluster: a rollback in another database at the same moment may
    -- drop it first ("does not exist") or change it meanwhile ("tuple concurrently updated").
    WHEN undefined_object THEN
      NULL;
    WHEN internal_error THEN
      RAISE NOTICE 'alertd_dispatcher is kept: another session changed it at the same time';
    END;
  END IF;
END
$$;

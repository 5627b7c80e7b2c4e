-- 20251202_alertd_hand_written_alerts.sql
--
-- A tenant's admins may write alert rows themselves (alert_history_insert_policy: the platform's
-- UI, through Supabase's data API). alertd sends such a row only to the addresses and URL its
-- integration names (the claim compares them; anything else fails unsent, with a reason), and
-- never sends its subject or message. That holds only if a hand-written row says it is one:
-- here the policy requires origin = 'manual' of every row an API user inserts, so that no tenant
-- can pass a row off as the trigger's (or a test's, or alertd's own).
--
-- The rows the trigger writes (as the function's owner) and those alertd writes (as its own
-- role) are not subject to this policy; nothing changes for them, nor for the writers' cost.
--
-- Safe to apply more than once. Requires 20251122_add_retry_and_alerts.sql and
-- 20251124_alertd_outbox.sql (the origin column).
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251202_alertd_hand_written_alerts.rollback.sql.

DROP POLICY IF EXISTS alert_history_insert_policy ON integration_alert_history;
CREATE POLICY alert_history_insert_policy ON integration_alert_history
  FOR INSERT TO authenticated
  WITH CHECK (
    origin = 'manual'
    AND (
      EXISTS (SELECT 1
                FROM tenant_users tu
               WHERE tu.user_id = auth.uid()
                 AND tu.role IN ('host_admin', 'super_admin'))
      OR EXISTS (SELECT 1
                   FROM integration_configs ic
                   JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
                  WHERE ic.id = integration_alert_history.integration_config_id
                    AND tu.user_id = auth.uid()
                    AND tu.role = 'tenant_admin')
    )
  );

COMMENT ON POLICY alert_history_insert_policy ON integration_alert_history IS
  'Admins insert hand-written alerts (origin manual only): alertd sends them only to the addresses and URL their integration names.';

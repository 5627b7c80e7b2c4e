-- Rollback of 20251202_alertd_hand_written_alerts.sql: the insert policy of
-- 20251122_add_retry_and_alerts.sql, which lets admins insert rows of any origin. alertd still
-- sends a row of origin manual only to its integration's addresses and URL.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DROP POLICY IF EXISTS alert_history_insert_policy ON integration_alert_history;
CREATE POLICY alert_history_insert_policy ON integration_alert_history
  FOR INSERT TO authenticated
  WITH CHECK (
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
  );

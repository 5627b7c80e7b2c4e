-- A sync run of a trial integration fails: the trigger queues one email and one webhook alert,
-- and alertd delivers them (to the mail catcher and the webhook receiver of compose.yaml):
--
--   docker compose -f deploy/compose/compose.yaml exec -T db psql -U postgres -f /trial/fail-a-sync.sql
--
-- Run again, it fails the same endpoint while its incident is open: a repeat, recorded
-- 'suppressed' and not sent (alertd history shows it; docs/configuration.md#incidents).
\set ON_ERROR_STOP on
BEGIN;

INSERT INTO tenants (name)
SELECT 'Trial tenant' WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = 'Trial tenant');

INSERT INTO integration_configs (tenant_id, integration_type, integration_name, alert_emails, alert_webhook_url)
SELECT id, 'paycom', 'Paycom (trial)', ARRAY['payroll-ops@example.com'], 'http://receiver:8080/hooks/alertd'
  FROM tenants
 WHERE name = 'Trial tenant'
   AND NOT EXISTS (SELECT 1 FROM integration_configs WHERE integration_name = 'Paycom (trial)');

WITH run AS (
  INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status)
  SELECT id, 'employees', now(), 'running' FROM integration_configs WHERE integration_name = 'Paycom (trial)'
  RETURNING id
)
SELECT id AS sync_run FROM run \gset

UPDATE integration_sync_history
   SET status = 'failed', error_message = 'Paycom answered 401: the API token has expired'
 WHERE id = :'sync_run';

COMMIT;

SELECT id, alert_channel, recipients, delivery_status
  FROM integration_alert_history
 WHERE sync_history_id = :'sync_run'
 ORDER BY alert_channel;

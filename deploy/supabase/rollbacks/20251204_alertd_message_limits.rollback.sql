-- Rollback of 20251204_alertd_message_limits.sql: no message limit.
--
-- Held alerts are recorded failed (their reason kept in delivery_error; metadata -> 'held'
-- stays); the notices of held alerts keep their rows under the older words (alert_type
-- 'failure', origin 'incident'; metadata -> 'alertd_kind' keeps the difference), those still
-- pending recorded failed, not sent. An older alertd sends every alert, without a limit.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

UPDATE integration_alert_history
   SET delivery_status = 'failed'
 WHERE delivery_status = 'held';
UPDATE integration_alert_history
   SET delivery_status = 'failed',
       delivery_error = 'not sent: alertd''s message limits were rolled back (20251204_alertd_message_limits)',
       next_attempt_at = NULL
 WHERE alert_type = 'held' AND delivery_status = 'pending';
UPDATE integration_alert_history
   SET alert_type = 'failure',
       origin = 'incident',
       metadata = coalesce(metadata, '{}') || jsonb_build_object('alertd_kind', alert_type, 'alertd_origin', origin)
 WHERE alert_type = 'held';

DROP INDEX IF EXISTS idx_alert_history_held;

DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin IN ('test', 'incident', 'destination'));

ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_alert_type_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_alert_type_check
  CHECK (alert_type IN ('failure', 'success', 'warning', 'recovery', 'reminder', 'overdue', 'stuck', 'webhook_disabled'));
ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_origin_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_origin_check
  CHECK (origin IN ('trigger', 'manual', 'test', 'incident', 'destination'));
ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_delivery_status_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_delivery_status_check
  CHECK (delivery_status IN ('pending', 'sent', 'failed', 'bounced', 'suppressed'));
COMMENT ON COLUMN integration_alert_history.alert_type IS
  'failure, success, warning (a partial run), overdue (an endpoint''s scheduled run did not start), stuck (a run running far too long), recovery (an incident closed), reminder (an incident still open) or webhook_disabled (the integration''s webhook URL was disabled).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (alertd''s sweep: an overdue endpoint, a stuck run, their notices, a reminder), destination (alertd disabled the integration''s webhook URL), test (alertd --test-notification) or manual.';
COMMENT ON COLUMN integration_alert_history.delivery_status IS
  'pending, sent, failed, bounced, or suppressed (a repeat of an open incident: recorded, not sent).';

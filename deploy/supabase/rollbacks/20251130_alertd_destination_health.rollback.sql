-- Rollback of 20251130_alertd_destination_health.sql: no destination health.
--
-- Alerts waiting for their destination are due again at once (an older alertd tries them on
-- their own schedule); pending notices of disabled URLs are recorded failed ("not sent: ..."),
-- the others keep their rows under the older words (metadata -> 'alertd_kind' keeps the
-- difference). The destinations' state is dropped: an older alertd does not keep one.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

UPDATE integration_alert_history
   SET next_attempt_at = coalesce((metadata -> 'parked' ->> 'due_at')::timestamptz, now()),
       metadata = metadata - 'parked'
 WHERE delivery_status = 'pending' AND next_attempt_at IS NULL AND metadata ? 'parked';
UPDATE integration_alert_history
   SET delivery_status = 'failed',
       delivery_error = 'not sent: alertd''s destination health was rolled back (20251130_alertd_destination_health)',
       next_attempt_at = NULL
 WHERE alert_type = 'webhook_disabled' AND delivery_status = 'pending';
UPDATE integration_alert_history
   SET alert_type = 'failure',
       origin = 'incident',
       metadata = coalesce(metadata, '{}') || jsonb_build_object('alertd_kind', alert_type, 'alertd_origin', origin)
 WHERE alert_type = 'webhook_disabled';

DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin IN ('test', 'incident'));

ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_alert_type_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_alert_type_check
  CHECK (alert_type IN ('failure', 'success', 'warning', 'recovery', 'reminder', 'overdue', 'stuck'));
ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_origin_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_origin_check
  CHECK (origin IN ('trigger', 'manual', 'test', 'incident'));
COMMENT ON COLUMN integration_alert_history.alert_type IS
  'failure, success, warning (a partial run), overdue (an endpoint''s scheduled run did not start), stuck (a run running far too long), recovery (an incident closed) or reminder (an incident still open).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (alertd''s sweep: an overdue endpoint, a stuck run, their notices, a reminder), test (alertd --test-notification) or manual.';
COMMENT ON COLUMN integration_alert_history.next_attempt_at IS
  'When a pending alert is next due for delivery; NULL for alerts written before alertd was installed.';

DROP TABLE IF EXISTS alertd_destinations;

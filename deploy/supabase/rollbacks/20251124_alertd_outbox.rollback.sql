-- Rollback of 20251124_alertd_outbox.sql: returns the schema to what it was before.
--
-- It drops integration_alert_attempts, the audit of every delivery attempt, and the outbox
-- columns of integration_alert_history. `alertd db rollback` refuses while
-- integration_alert_attempts holds rows unless --force is given.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DROP TRIGGER IF EXISTS alertd_enqueue_on_insert ON integration_sync_history;
DROP TRIGGER IF EXISTS alertd_enqueue_on_status_change ON integration_sync_history;
DROP FUNCTION IF EXISTS alertd_enqueue_sync_alerts();

DROP TABLE IF EXISTS integration_alert_attempts;

DROP INDEX IF EXISTS idx_alert_history_trigger_once;
DROP INDEX IF EXISTS idx_alert_history_due;

ALTER TABLE integration_alert_history
  DROP COLUMN IF EXISTS origin,
  DROP COLUMN IF EXISTS attempt_count,
  DROP COLUMN IF EXISTS max_attempts,
  DROP COLUMN IF EXISTS next_attempt_at,
  DROP COLUMN IF EXISTS last_attempt_at,
  DROP COLUMN IF EXISTS locked_by,
  DROP COLUMN IF EXISTS locked_until,
  DROP COLUMN IF EXISTS created_at;

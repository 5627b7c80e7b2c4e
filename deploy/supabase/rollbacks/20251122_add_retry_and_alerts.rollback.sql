-- Rollback of 20251122_add_retry_and_alerts.sql: returns the schema to what it was before.
--
-- It drops integration_alert_history and the retry, alert and incremental-sync columns, with
-- their data. `alertd db rollback` refuses while integration_alert_history holds rows unless
-- --force is given. Roll back 20251124_alertd_outbox first if it is applied.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DROP VIEW IF EXISTS pending_sync_retries CASCADE;

DROP TABLE IF EXISTS integration_alert_history CASCADE;

DROP FUNCTION IF EXISTS calculate_next_retry(integer, integer) CASCADE;
DROP FUNCTION IF EXISTS schedule_sync_retry(uuid, integer) CASCADE;
DROP FUNCTION IF EXISTS update_sync_watermark(uuid, text) CASCADE;

ALTER TABLE integration_sync_history
  DROP COLUMN IF EXISTS retry_count,
  DROP COLUMN IF EXISTS max_retries,
  DROP COLUMN IF EXISTS retry_at,
  DROP COLUMN IF EXISTS original_sync_id,
  DROP COLUMN IF EXISTS is_retry;

ALTER TABLE integration_configs
  DROP COLUMN IF EXISTS alert_on_failure,
  DROP COLUMN IF EXISTS alert_on_success,
  DROP COLUMN IF EXISTS alert_emails,
  DROP COLUMN IF EXISTS alert_webhook_url;

ALTER TABLE integration_sync_configs
  DROP COLUMN IF EXISTS sync_mode,
  DROP COLUMN IF EXISTS last_sync_timestamp,
  DROP COLUMN IF EXISTS incremental_key,
  DROP COLUMN IF EXISTS watermark_value;

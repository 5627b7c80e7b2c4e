-- 20251122_add_retry_and_alerts.sql
--
-- Retry tracking, alert configuration, incremental sync, the alert history table, three helper
-- functions and the pending_sync_retries view, as listed in MIGRATION_INSTRUCTIONS.md.
--
-- Safe to apply to a database that has never seen it, to one where the platform's earlier
-- version of this file was already applied, and any number of times: every statement either
-- checks for what exists or replaces it, so the resulting schema is the same in each case.
--
-- Compared with the platform's earlier version, this one fixes:
--   * calculate_next_retry() was declared IMMUTABLE although it reads now(); it is STABLE.
--   * schedule_sync_retry() returned true for an id that does not exist and never changed
--     retry_count, so a row could sit in pending_sync_retries forever. It now returns false for
--     unknown or non-failed runs, counts every retry it hands out and stops at the maximum.
--   * CREATE POLICY failed on a second run; policies are dropped and created again.
--   * pending_sync_retries read the tables with its owner's rights, bypassing row-level
--     security; it now runs with the caller's (security_invoker).
--
-- Every function keeps the platform's name, parameter names, defaults and return type, so callers
-- that pass arguments by name (the platform's UI calls schedule_sync_retry(sync_id => ...,
-- max_retry_attempts => ...)) work unchanged, and CREATE OR REPLACE applies over its version.
--
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251122_add_retry_and_alerts.rollback.sql.

-- 1. Retry tracking ---------------------------------------------------------------------------

ALTER TABLE integration_sync_history
  ADD COLUMN IF NOT EXISTS retry_count integer DEFAULT 0,
  ADD COLUMN IF NOT EXISTS max_retries integer DEFAULT 3,
  ADD COLUMN IF NOT EXISTS retry_at timestamp,
  ADD COLUMN IF NOT EXISTS original_sync_id uuid REFERENCES integration_sync_history(id) ON DELETE SET NULL,
  ADD COLUMN IF NOT EXISTS is_retry boolean DEFAULT false;

COMMENT ON COLUMN integration_sync_history.retry_count IS
  'Retries of this failed run that have been used: schedule_sync_retry() counts one each time a scheduled retry has come due and the next one is asked for.';
COMMENT ON COLUMN integration_sync_history.max_retries IS
  'Most retries allowed for this run; set by schedule_sync_retry(max_retry_attempts).';
COMMENT ON COLUMN integration_sync_history.retry_at IS
  'When the next retry of this failed run is due; NULL when none is scheduled.';
COMMENT ON COLUMN integration_sync_history.original_sync_id IS
  'For a retry run: the failed run it retries.';
COMMENT ON COLUMN integration_sync_history.is_retry IS
  'True when this run is a retry of an earlier failed run.';

CREATE INDEX IF NOT EXISTS idx_sync_history_retry_at
  ON integration_sync_history (retry_at)
  WHERE retry_at IS NOT NULL AND status = 'failed';

-- Deleting a run sets original_sync_id to NULL in its retries; this index keeps that cheap and
-- serves the view's look-up of retries already started.
CREATE INDEX IF NOT EXISTS idx_sync_history_original_sync
  ON integration_sync_history (original_sync_id)
  WHERE original_sync_id IS NOT NULL;

-- 2. Alert configuration ----------------------------------------------------------------------

ALTER TABLE integration_configs
  ADD COLUMN IF NOT EXISTS alert_on_failure boolean DEFAULT true,
  ADD COLUMN IF NOT EXISTS alert_on_success boolean DEFAULT false,
  ADD COLUMN IF NOT EXISTS alert_emails text[],
  ADD COLUMN IF NOT EXISTS alert_webhook_url text;

COMMENT ON COLUMN integration_configs.alert_on_failure IS
  'Send an alert when a sync run of this integration fails or partly fails.';
COMMENT ON COLUMN integration_configs.alert_on_success IS
  'Send an alert when a sync run of this integration succeeds.';
COMMENT ON COLUMN integration_configs.alert_emails IS
  'Email addresses that receive this integration''s alerts.';
COMMENT ON COLUMN integration_configs.alert_webhook_url IS
  'URL that receives this integration''s alerts as signed webhooks.';

-- 3. Incremental sync -------------------------------------------------------------------------

ALTER TABLE integration_sync_configs
  ADD COLUMN IF NOT EXISTS sync_mode varchar(20) DEFAULT 'full'
    CHECK (sync_mode IN ('full', 'incremental', 'delta')),
  ADD COLUMN IF NOT EXISTS last_sync_timestamp timestamp,
  ADD COLUMN IF NOT EXISTS incremental_key varchar(100),
  ADD COLUMN IF NOT EXISTS watermark_value text;

COMMENT ON COLUMN integration_sync_configs.sync_mode IS
  'full, incremental or delta.';
COMMENT ON COLUMN integration_sync_configs.last_sync_timestamp IS
  'When the last successful sync of this endpoint finished (set by update_sync_watermark).';
COMMENT ON COLUMN integration_sync_configs.incremental_key IS
  'Source field used to find records changed since the watermark.';
COMMENT ON COLUMN integration_sync_configs.watermark_value IS
  'Value of incremental_key reached by the last successful sync.';

-- 4. Alert history ----------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS integration_alert_history (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  integration_config_id uuid NOT NULL REFERENCES integration_configs(id) ON DELETE CASCADE,
  sync_history_id uuid REFERENCES integration_sync_history(id) ON DELETE SET NULL,
  alert_type varchar(20) NOT NULL CHECK (alert_type IN ('failure', 'success', 'warning')),
  alert_channel varchar(20) NOT NULL CHECK (alert_channel IN ('email', 'webhook', 'sms')),
  recipients text[],
  subject text,
  message text,
  sent_at timestamp DEFAULT now(),
  delivery_status varchar(20) DEFAULT 'pending'
    CHECK (delivery_status IN ('pending', 'sent', 'failed', 'bounced')),
  delivery_error text,
  metadata jsonb DEFAULT '{}'
);

-- gen_random_uuid() is built in and needs no extension on the search path; an earlier version
-- may have created the table with uuid_generate_v4().
ALTER TABLE integration_alert_history ALTER COLUMN id SET DEFAULT gen_random_uuid();

COMMENT ON TABLE integration_alert_history IS
  'Every alert about a sync run: where it went, what it said and whether it was delivered.';
COMMENT ON COLUMN integration_alert_history.alert_type IS 'failure, success or warning (a partial run).';
COMMENT ON COLUMN integration_alert_history.alert_channel IS 'email, webhook or sms.';
COMMENT ON COLUMN integration_alert_history.recipients IS 'Email addresses, or the webhook URL, the alert went to.';
COMMENT ON COLUMN integration_alert_history.delivery_status IS 'pending, sent, failed or bounced.';
COMMENT ON COLUMN integration_alert_history.delivery_error IS 'Why the last delivery attempt failed.';

CREATE INDEX IF NOT EXISTS idx_alert_history_config
  ON integration_alert_history (integration_config_id, sent_at DESC);
CREATE INDEX IF NOT EXISTS idx_alert_history_sync
  ON integration_alert_history (sync_history_id);
CREATE INDEX IF NOT EXISTS idx_alert_history_status
  ON integration_alert_history (delivery_status);

-- 5. Helper functions -------------------------------------------------------------------------

-- STABLE, not IMMUTABLE: the result depends on now().
CREATE OR REPLACE FUNCTION calculate_next_retry(retry_count integer, base_delay_seconds integer DEFAULT 60)
RETURNS timestamp
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
  SELECT (now() + make_interval(secs => least(
    greatest(coalesce(base_delay_seconds, 60), 0)::double precision
      * power(2::double precision, least(greatest(coalesce(retry_count, 0), 0), 30)),
    3600)))::timestamp
$$;

COMMENT ON FUNCTION calculate_next_retry(integer, integer) IS
  'When retry number retry_count + 1 is due: now() + base_delay_seconds * 2^retry_count, at most one hour (60 s, 120 s, 240 s, ... with the default base).';

CREATE OR REPLACE FUNCTION schedule_sync_retry(sync_id uuid, max_retry_attempts integer DEFAULT 3)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = public, pg_temp
AS $$
DECLARE
  run record;
  allowed integer;
  used integer;
BEGIN
  SELECT h.status, h.retry_count, h.max_retries, h.retry_at
    INTO run
    FROM integration_sync_history h
   WHERE h.id = sync_id
     FOR UPDATE;

  -- Unknown runs and runs that did not fail have nothing to retry.
  IF NOT FOUND OR run.status IS DISTINCT FROM 'failed' THEN
    RETURN false;
  END IF;

  allowed := greatest(coalesce(max_retry_attempts, run.max_retries, 3), 0);
  used := coalesce(run.retry_count, 0);

  IF run.retry_at IS NOT NULL THEN
    IF run.retry_at > now()::timestamp THEN
      -- Already scheduled and not yet due: asking again (a second click) changes nothing.
      RETURN true;
    END IF;
    -- The scheduled retry came due and was used; count it.
    used := used + 1;
  END IF;

  IF used >= allowed THEN
    UPDATE integration_sync_history
       SET retry_count = used, max_retries = allowed, retry_at = NULL
     WHERE id = sync_id;
    RETURN false;
  END IF;

  UPDATE integration_sync_history
     SET retry_count = used, max_retries = allowed, retry_at = calculate_next_retry(used)
   WHERE id = sync_id;
  RETURN true;
END
$$;

COMMENT ON FUNCTION schedule_sync_retry(uuid, integer) IS
  'Schedules the next retry of a failed sync run (60 s, 120 s, 240 s, ... after the call). Returns false when the run does not exist, did not fail, or has used max_retry_attempts retries. Calling it again while a retry is scheduled and not yet due changes nothing.';

-- The parameter is named new_watermark_value, as in the platform's version: PostgreSQL refuses
-- to rename a parameter with CREATE OR REPLACE, and callers may pass it by name.
CREATE OR REPLACE FUNCTION update_sync_watermark(sync_config_id uuid, new_watermark_value text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = public, pg_temp
AS $$
BEGIN
  UPDATE integration_sync_configs
     SET last_sync_timestamp = now(),
         watermark_value = new_watermark_value,
         updated_at = now()
   WHERE id = sync_config_id;

  -- The platform's callers rely on an unknown id raising nothing (an endpoint deleted while its
  -- sync ran); say so without failing their transaction.
  IF NOT FOUND THEN
    RAISE NOTICE 'update_sync_watermark: integration sync config % does not exist; nothing was updated', sync_config_id
      USING HINT = 'Pass integration_sync_configs.id of the endpoint whose sync finished.';
  END IF;
END
$$;

COMMENT ON FUNCTION update_sync_watermark(uuid, text) IS
  'Records the watermark reached by a successful incremental sync and stamps last_sync_timestamp. An unknown sync config updates nothing and raises a NOTICE, not an error.';

-- 6. Views ------------------------------------------------------------------------------------

CREATE OR REPLACE VIEW pending_sync_retries
WITH (security_invoker = true)
AS
SELECT h.id,
       h.integration_config_id,
       h.endpoint_name,
       h.retry_count,
       h.max_retries,
       h.retry_at,
       h.error_message,
       c.integration_name,
       c.tenant_id
  FROM integration_sync_history h
  JOIN integration_configs c ON c.id = h.integration_config_id
 WHERE h.status = 'failed'
   AND h.retry_at IS NOT NULL
   AND h.retry_at <= now()
   AND h.retry_count < h.max_retries
   -- A retry run already started for this due retry takes the row out of the queue.
   AND NOT EXISTS (
         SELECT 1
           FROM integration_sync_history r
          WHERE r.original_sync_id = h.id
            AND r.sync_started_at >= h.retry_at)
 ORDER BY h.retry_at;

COMMENT ON VIEW pending_sync_retries IS
  'Failed sync runs whose scheduled retry is due and not yet started, oldest first.';

-- 7. Row-level security and grants ------------------------------------------------------------

ALTER TABLE integration_alert_history ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS alert_history_select_policy ON integration_alert_history;
CREATE POLICY alert_history_select_policy ON integration_alert_history
  FOR SELECT TO authenticated
  USING (
    EXISTS (SELECT 1
              FROM integration_configs ic
              JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
             WHERE ic.id = integration_alert_history.integration_config_id
               AND tu.user_id = auth.uid())
    OR EXISTS (SELECT 1
                 FROM tenant_users tu
                WHERE tu.user_id = auth.uid()
                  AND tu.role IN ('host_admin', 'super_admin'))
  );

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

-- On Supabase, default privileges give the API roles ALL on every new table, and TRUNCATE is not
-- subject to row-level security: an API user could have emptied the audit. The policies above
-- are all that anon and authenticated need privileges for.
REVOKE ALL ON integration_alert_history FROM anon;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON integration_alert_history FROM authenticated;
GRANT SELECT, INSERT ON integration_alert_history TO authenticated;
GRANT SELECT ON pending_sync_retries TO authenticated;
GRANT EXECUTE ON FUNCTION calculate_next_retry(integer, integer) TO authenticated;
GRANT EXECUTE ON FUNCTION schedule_sync_retry(uuid, integer) TO authenticated;
GRANT EXECUTE ON FUNCTION update_sync_watermark(uuid, text) TO authenticated;

-- 20251124_alertd_outbox.sql
--
-- Turns integration_alert_history into the outbox that alertd delivers from.
--
-- A trigger on integration_sync_history writes one pending alert per channel in the same
-- transaction as the status change, so an alert exists if and only if the change committed,
-- whether or not alertd was running. It then notifies the channel `alertd`; the notification
-- only saves latency, alertd also polls. alertd claims due alerts with FOR UPDATE SKIP LOCKED and
-- a lease (locked_by, locked_until), so several instances share the work and a crashed one's
-- alerts are claimed again when its lease expires. Every delivery attempt is a row in
-- integration_alert_attempts.
--
-- Safe to apply more than once. Requires 20251122_add_retry_and_alerts.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251124_alertd_outbox.rollback.sql.
--
-- The dispatcher's own columns are timestamptz: lease and retry arithmetic must not depend on
-- the session's TimeZone setting.

-- 1. Outbox columns ---------------------------------------------------------------------------

-- next_attempt_at and created_at get their defaults after the columns exist, so rows written
-- before this migration keep NULL: alertd never sends them on its own (they predate it and may be
-- long stale). `UPDATE ... SET next_attempt_at = now()` queues one deliberately.
ALTER TABLE integration_alert_history
  ADD COLUMN IF NOT EXISTS origin varchar(20) NOT NULL DEFAULT 'manual'
    CHECK (origin IN ('trigger', 'manual', 'test')),
  ADD COLUMN IF NOT EXISTS attempt_count integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS max_attempts integer NOT NULL DEFAULT 10
    CHECK (max_attempts > 0),
  ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,
  ADD COLUMN IF NOT EXISTS last_attempt_at timestamptz,
  ADD COLUMN IF NOT EXISTS locked_by text,
  ADD COLUMN IF NOT EXISTS locked_until timestamptz,
  ADD COLUMN IF NOT EXISTS created_at timestamptz;

ALTER TABLE integration_alert_history ALTER COLUMN next_attempt_at SET DEFAULT now();
ALTER TABLE integration_alert_history ALTER COLUMN created_at SET DEFAULT now();

COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), test (alertd --test-notification) or manual.';
COMMENT ON COLUMN integration_alert_history.attempt_count IS
  'Delivery attempts started so far.';
COMMENT ON COLUMN integration_alert_history.max_attempts IS
  'Attempts allowed before the alert is marked failed.';
COMMENT ON COLUMN integration_alert_history.next_attempt_at IS
  'When a pending alert is next due for delivery; NULL for alerts written before alertd was installed.';
COMMENT ON COLUMN integration_alert_history.last_attempt_at IS
  'When the last delivery attempt started.';
COMMENT ON COLUMN integration_alert_history.locked_by IS
  'The alertd instance delivering the alert now.';
COMMENT ON COLUMN integration_alert_history.locked_until IS
  'Lease: until then no other instance claims the alert; after it, a crashed instance''s alert is claimed again.';
COMMENT ON COLUMN integration_alert_history.created_at IS
  'When the alert was written; NULL for alerts written before alertd was installed.';

-- The claim query's index: pending alerts in due order.
CREATE INDEX IF NOT EXISTS idx_alert_history_due
  ON integration_alert_history (next_attempt_at)
  WHERE delivery_status = 'pending';

-- One alert per sync run, alert type and channel, however often the run is updated.
CREATE UNIQUE INDEX IF NOT EXISTS idx_alert_history_trigger_once
  ON integration_alert_history (sync_history_id, alert_type, alert_channel)
  WHERE origin = 'trigger';

-- 2. Delivery attempts ------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS integration_alert_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id uuid NOT NULL REFERENCES integration_alert_history(id) ON DELETE CASCADE,
  attempt_number integer NOT NULL CHECK (attempt_number > 0),
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  outcome varchar(20) NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed', 'bounced')),
  http_status integer,
  smtp_reply text,
  error text,
  worker text,
  details jsonb NOT NULL DEFAULT '{}',
  UNIQUE (alert_id, attempt_number)
);

COMMENT ON TABLE integration_alert_attempts IS
  'Every delivery attempt of every alert: when, how long, the outcome and what the server said.';
COMMENT ON COLUMN integration_alert_attempts.outcome IS
  'sent, retry (a temporary failure, tried again later), failed or bounced (final).';
COMMENT ON COLUMN integration_alert_attempts.http_status IS 'The webhook receiver''s HTTP status.';
COMMENT ON COLUMN integration_alert_attempts.smtp_reply IS 'The SMTP server''s reply.';
COMMENT ON COLUMN integration_alert_attempts.worker IS 'The alertd instance that made the attempt.';
COMMENT ON COLUMN integration_alert_attempts.details IS 'Per-recipient results and other particulars.';

ALTER TABLE integration_alert_attempts ENABLE ROW LEVEL SECURITY;

-- Whoever may read an alert may read its attempts: the sub-query runs under the alert history's
-- own policy.
DROP POLICY IF EXISTS alert_attempts_select_policy ON integration_alert_attempts;
CREATE POLICY alert_attempts_select_policy ON integration_alert_attempts
  FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM integration_alert_history a
                  WHERE a.id = integration_alert_attempts.alert_id));

-- The audit is written by alertd alone. On Supabase, default privileges give the API roles ALL
-- on every new table, and TRUNCATE is not subject to row-level security: take back what no API
-- user needs.
REVOKE ALL ON integration_alert_attempts FROM anon;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON integration_alert_attempts FROM authenticated;
GRANT SELECT ON integration_alert_attempts TO authenticated;

-- 3. The trigger ------------------------------------------------------------------------------

-- SECURITY DEFINER: the writer of a sync run (the ETL runner, a plain authenticated role) may
-- not insert into integration_alert_history, whose policy admits admins only. The function runs
-- as its owner, reads nothing the writer chose beyond the new row, and names every table with
-- its schema, with a search_path that holds only pg_catalog.
CREATE OR REPLACE FUNCTION alertd_enqueue_sync_alerts()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  config record;
  kind text;
  emails text[];
  webhook text;
  queued integer := 0;
  added integer;
BEGIN
  kind := CASE NEW.status
            WHEN 'failed' THEN 'failure'
            WHEN 'partial' THEN 'warning'
            WHEN 'success' THEN 'success'
          END;
  IF kind IS NULL THEN
    RETURN NULL;
  END IF;

  SELECT c.alert_on_failure, c.alert_on_success, c.alert_emails, c.alert_webhook_url
    INTO config
    FROM public.integration_configs c
   WHERE c.id = NEW.integration_config_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  IF kind = 'success' AND NOT coalesce(config.alert_on_success, false) THEN
    RETURN NULL;
  END IF;
  IF kind <> 'success' AND NOT coalesce(config.alert_on_failure, false) THEN
    RETURN NULL;
  END IF;

  -- Addresses trimmed, blanks dropped, duplicates folded, first-seen order kept.
  SELECT array_agg(address ORDER BY first_seen)
    INTO emails
    FROM (SELECT btrim(e) AS address, min(n) AS first_seen
            FROM unnest(config.alert_emails) WITH ORDINALITY AS t(e, n)
           WHERE btrim(e) <> ''
           GROUP BY btrim(e)) addresses;

  IF emails IS NOT NULL THEN
    INSERT INTO public.integration_alert_history
           (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, origin, metadata)
    VALUES (NEW.integration_config_id, NEW.id, kind, 'email', emails,
            NULL, 'pending', 'trigger', jsonb_build_object('sync_status', NEW.status))
    ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    queued := queued + added;
  END IF;

  webhook := nullif(btrim(config.alert_webhook_url), '');
  IF webhook IS NOT NULL THEN
    -- The audit row must not keep credentials written into the URL; alertd refuses such URLs.
    webhook := regexp_replace(webhook, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1[redacted]@');
    INSERT INTO public.integration_alert_history
           (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, origin, metadata)
    VALUES (NEW.integration_config_id, NEW.id, kind, 'webhook', ARRAY[webhook],
            NULL, 'pending', 'trigger', jsonb_build_object('sync_status', NEW.status))
    ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    queued := queued + added;
  END IF;

  -- A constant payload: PostgreSQL folds identical notifications of one transaction into one.
  IF queued > 0 THEN
    PERFORM pg_notify('alertd', '');
  END IF;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION alertd_enqueue_sync_alerts() FROM PUBLIC;

COMMENT ON FUNCTION alertd_enqueue_sync_alerts() IS
  'Trigger: queues the alerts a sync run''s new status calls for and notifies alertd.';

-- The WHEN clauses keep the function out of every write that cannot queue an alert.
DROP TRIGGER IF EXISTS alertd_enqueue_on_insert ON integration_sync_history;
CREATE TRIGGER alertd_enqueue_on_insert
  AFTER INSERT ON integration_sync_history
  FOR EACH ROW
  WHEN (NEW.status IN ('success', 'failed', 'partial'))
  EXECUTE FUNCTION alertd_enqueue_sync_alerts();

DROP TRIGGER IF EXISTS alertd_enqueue_on_status_change ON integration_sync_history;
CREATE TRIGGER alertd_enqueue_on_status_change
  AFTER UPDATE OF status ON integration_sync_history
  FOR EACH ROW
  WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('success', 'failed', 'partial'))
  EXECUTE FUNCTION alertd_enqueue_sync_alerts();

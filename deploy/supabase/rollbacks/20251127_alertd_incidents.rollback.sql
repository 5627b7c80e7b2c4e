-- Rollback of 20251127_alertd_incidents.sql: no incidents; every failed run sends its alerts again.
--
-- It drops integration_alert_incidents, alertd_settings and integration_alert_history.incident_id,
-- and puts back the checks of the words the migration added. Alerts that used them stay in the
-- history under the older words, the difference kept in their metadata (alertd_kind):
-- recovery notices become success alerts, reminders failure alerts written 'manual', and
-- suppressed repeats 'failed' with their reason, which starts with "suppressed:".
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

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

  -- Addresses trimmed, blanks dropped, duplicates folded, first-seen order kept; no query when
  -- there are none.
  IF cardinality(config.alert_emails) > 0 THEN
    SELECT array_agg(address ORDER BY first_seen)
      INTO emails
      FROM (SELECT btrim(e) AS address, min(n) AS first_seen
              FROM unnest(config.alert_emails) WITH ORDINALITY AS t(e, n)
             WHERE btrim(e) <> ''
             GROUP BY btrim(e)) addresses;
  END IF;

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
    IF strpos(webhook, '@') > 0 THEN
      webhook := regexp_replace(webhook, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1[redacted]@');
    END IF;
    INSERT INTO public.integration_alert_history
           (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, origin, metadata)
    VALUES (NEW.integration_config_id, NEW.id, kind, 'webhook', ARRAY[webhook],
            NULL, 'pending', 'trigger', jsonb_build_object('sync_status', NEW.status))
    ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    queued := queued + added;
  END IF;

  -- Notify only while a dispatcher waits for work: it then holds the waiting lock (1634497140, 1)
  -- and this shared try fails. While every dispatcher is busy the try succeeds and is held to
  -- the end of this transaction, so a dispatcher about to wait first sees this alert committed.
  -- A constant payload: PostgreSQL folds identical notifications of one transaction into one.
  IF queued > 0 AND NOT pg_try_advisory_xact_lock_shared(1634497140, 1) THEN
    PERFORM pg_notify('alertd', '');
  END IF;
  RETURN NULL;
END
$$;

COMMENT ON FUNCTION alertd_enqueue_sync_alerts() IS
  'Trigger: queues the alerts a sync run''s new status calls for, and notifies alertd if a dispatcher is waiting.';

DROP TRIGGER IF EXISTS alertd_delete_incidents_on_delete ON integration_configs;
DROP FUNCTION IF EXISTS alertd_delete_integration_incidents();

-- alertd writes test alerts only, again.
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin = 'test');

UPDATE integration_alert_history
   SET alert_type = CASE alert_type WHEN 'recovery' THEN 'success' ELSE 'failure' END,
       origin = CASE origin WHEN 'incident' THEN 'manual' ELSE origin END,
       metadata = coalesce(metadata, '{}') || jsonb_build_object('alertd_kind', alert_type)
 WHERE alert_type IN ('recovery', 'reminder');
UPDATE integration_alert_history
   SET delivery_status = 'failed',
       metadata = coalesce(metadata, '{}') || jsonb_build_object('alertd_kind', 'suppressed')
 WHERE delivery_status = 'suppressed';
UPDATE integration_alert_history SET origin = 'manual' WHERE origin = 'incident';

ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_delivery_status_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_delivery_status_check
  CHECK (delivery_status IN ('pending', 'sent', 'failed', 'bounced'));
ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_alert_type_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_alert_type_check
  CHECK (alert_type IN ('failure', 'success', 'warning'));
ALTER TABLE integration_alert_history DROP CONSTRAINT IF EXISTS integration_alert_history_origin_check;
ALTER TABLE integration_alert_history ADD CONSTRAINT integration_alert_history_origin_check
  CHECK (origin IN ('trigger', 'manual', 'test'));

COMMENT ON COLUMN integration_alert_history.alert_type IS 'failure, success or warning (a partial run).';
COMMENT ON COLUMN integration_alert_history.delivery_status IS 'pending, sent, failed or bounced.';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), test (alertd --test-notification) or manual.';

DROP INDEX IF EXISTS idx_alert_history_incident;
ALTER TABLE integration_alert_history DROP COLUMN IF EXISTS incident_id;
DROP TABLE IF EXISTS integration_alert_incidents;
DROP TABLE IF EXISTS alertd_settings;

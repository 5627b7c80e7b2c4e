-- Rollback of 20251126_alertd_notify_when_waited_for.sql: the trigger notifies on every
-- transaction that queues an alert again, whether or not a dispatcher is waiting.
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

COMMENT ON FUNCTION alertd_enqueue_sync_alerts() IS
  'Trigger: queues the alerts a sync run''s new status calls for and notifies alertd.';

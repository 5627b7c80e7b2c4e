-- Rollback of 20251128_alertd_incident_groups.sql: no grouping; each endpoint's news goes out on
-- its own, at once.
--
-- It puts back the trigger of 20251127_alertd_incidents.sql and drops the group columns. Alerts
-- held for a group keep their due time and go out then, each on its own.
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
  incident uuid;
  severity text;
  opened timestamptz;
  email_alert uuid;
  webhook_alert uuid;
  delivery text := 'pending';
  reason text;
BEGIN
  kind := CASE NEW.status
            WHEN 'failed' THEN 'failure'
            WHEN 'partial' THEN 'warning'
            WHEN 'success' THEN 'success'
          END;
  IF kind IS NULL THEN
    RETURN NULL;
  END IF;

  -- The integration and its endpoint's open incident, in one look-up: a successful run with
  -- nothing open costs what it cost before incidents.
  SELECT c.alert_on_failure, c.alert_on_success, c.alert_emails, c.alert_webhook_url,
         c.configuration_metadata -> 'alertd' AS settings,
         i.id AS incident, i.severity, i.opened_at, i.news_email_alert_id, i.news_webhook_alert_id
    INTO config
    FROM public.integration_configs c
    LEFT JOIN public.integration_alert_incidents i
           ON i.integration_config_id = c.id
          AND i.endpoint_name = NEW.endpoint_name
          AND i.resolved_at IS NULL
   WHERE c.id = NEW.integration_config_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  incident := config.incident;

  IF kind = 'success' THEN
    IF incident IS NOT NULL THEN
      -- The endpoint recovered: close the incident and queue its recovery notice where the news
      -- went, whether or not alert_on_success is on.
      UPDATE public.integration_alert_incidents i
         SET resolved_at = now(), resolved_by_sync_id = NEW.id
       WHERE i.id = incident AND i.resolved_at IS NULL;
      IF FOUND THEN
        INSERT INTO public.integration_alert_history
               (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                sent_at, delivery_status, origin, metadata, incident_id)
        SELECT NEW.integration_config_id, NEW.id, 'recovery', a.alert_channel, a.recipients,
               NULL, 'pending', 'trigger', jsonb_build_object('sync_status', NEW.status), incident
          FROM public.integration_alert_history a
         WHERE a.id IN (config.news_email_alert_id, config.news_webhook_alert_id)
        ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
        GET DIAGNOSTICS queued = ROW_COUNT;
        IF queued > 0 AND NOT pg_try_advisory_xact_lock_shared(1634497140, 1) THEN
          PERFORM pg_notify('alertd', '');
        END IF;
        RETURN NULL;
      END IF;
    END IF;
    IF NOT coalesce(config.alert_on_success, false) THEN
      RETURN NULL;
    END IF;
  ELSIF NOT coalesce(config.alert_on_failure, false) THEN
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
  webhook := nullif(btrim(config.alert_webhook_url), '');
  IF emails IS NULL AND webhook IS NULL THEN
    RETURN NULL;
  END IF;

  IF kind <> 'success' THEN
    severity := config.severity;
    opened := config.opened_at;
    IF incident IS NULL THEN
      -- News: open the endpoint's incident, unless incidents are off for this integration
      -- (configuration_metadata -> 'alertd' ->> 'incidents') or by default (alertd_settings).
      -- The ids of the alerts that carry the news are chosen here, so that repeats can name them.
      -- Of two writers opening one incident at once, the second waits here for the first to
      -- commit, inserts nothing, and reads the incident the first opened: it is a repeat.
      INSERT INTO public.integration_alert_incidents
             (integration_config_id, endpoint_name, severity, opened_by_sync_id, news_sync_id,
              news_email_alert_id, news_webhook_alert_id, settings)
      SELECT NEW.integration_config_id, NEW.endpoint_name, kind, NEW.id, NEW.id,
             CASE WHEN emails IS NOT NULL THEN gen_random_uuid() END,
             CASE WHEN webhook IS NOT NULL THEN gen_random_uuid() END,
             config.settings
        FROM (VALUES (1)) AS one
        LEFT JOIN public.alertd_settings s ON true
       WHERE coalesce(CASE lower(config.settings ->> 'incidents')
                        WHEN 'off' THEN false WHEN 'false' THEN false
                        WHEN 'on' THEN true WHEN 'true' THEN true
                      END, s.incidents, true)
      ON CONFLICT (integration_config_id, endpoint_name) WHERE resolved_at IS NULL DO NOTHING
      RETURNING id, news_email_alert_id, news_webhook_alert_id INTO incident, email_alert, webhook_alert;
      IF NOT FOUND THEN
        -- Incidents are off, or another writer opened this one first.
        SELECT i.id, i.severity, i.opened_at, i.news_email_alert_id, i.news_webhook_alert_id
          INTO incident, severity, opened, email_alert, webhook_alert
          FROM public.integration_alert_incidents i
         WHERE i.integration_config_id = NEW.integration_config_id
           AND i.endpoint_name = NEW.endpoint_name
           AND i.resolved_at IS NULL;
      END IF;
    ELSE
      email_alert := config.news_email_alert_id;
      webhook_alert := config.news_webhook_alert_id;
    END IF;

    IF severity = 'warning' AND kind = 'failure' THEN
      -- A failure after warnings is news: it goes out, and later repeats name its alerts.
      UPDATE public.integration_alert_incidents i
         SET severity = 'failure', news_sync_id = NEW.id, last_notified_at = now(),
             news_email_alert_id = CASE WHEN emails IS NOT NULL THEN gen_random_uuid() END,
             news_webhook_alert_id = CASE WHEN webhook IS NOT NULL THEN gen_random_uuid() END
       WHERE i.id = incident AND i.severity = 'warning'
      RETURNING i.news_email_alert_id, i.news_webhook_alert_id INTO email_alert, webhook_alert;
      IF FOUND THEN
        severity := NULL;
      ELSE
        -- Another writer's failure escalated it first.
        SELECT i.news_email_alert_id, i.news_webhook_alert_id INTO email_alert, webhook_alert
          FROM public.integration_alert_incidents i WHERE i.id = incident;
      END IF;
    END IF;

    IF severity IS NOT NULL THEN
      -- A repeat: recorded, not sent. The open incident was read without a lock, so writers
      -- failing one endpoint at once never wait for each other.
      delivery := 'suppressed';
      reason := 'suppressed: a repeat of incident ' || incident || ', open since '
                || to_char(opened AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
                || '; the news went out as alert ';
    END IF;
  END IF;

  IF emails IS NOT NULL THEN
    INSERT INTO public.integration_alert_history
           (id, integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, delivery_error, origin, metadata, incident_id, next_attempt_at)
    VALUES (CASE WHEN delivery = 'pending' AND email_alert IS NOT NULL THEN email_alert ELSE gen_random_uuid() END,
            NEW.integration_config_id, NEW.id, kind, 'email', emails,
            NULL, delivery, reason || coalesce(email_alert::text, 'none (the integration had no addresses then)'),
            'trigger', jsonb_build_object('sync_status', NEW.status), incident,
            CASE WHEN delivery = 'pending' THEN now() END)
    ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF delivery = 'pending' THEN
      queued := queued + added;
    END IF;
  END IF;

  IF webhook IS NOT NULL THEN
    -- The audit row must not keep credentials written into the URL; alertd refuses such URLs.
    IF strpos(webhook, '@') > 0 THEN
      webhook := regexp_replace(webhook, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1[redacted]@');
    END IF;
    INSERT INTO public.integration_alert_history
           (id, integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, delivery_error, origin, metadata, incident_id, next_attempt_at)
    VALUES (CASE WHEN delivery = 'pending' AND webhook_alert IS NOT NULL THEN webhook_alert ELSE gen_random_uuid() END,
            NEW.integration_config_id, NEW.id, kind, 'webhook', ARRAY[webhook],
            NULL, delivery, reason || coalesce(webhook_alert::text, 'none (the integration had no webhook URL then)'),
            'trigger', jsonb_build_object('sync_status', NEW.status), incident,
            CASE WHEN delivery = 'pending' THEN now() END)
    ON CONFLICT (sync_history_id, alert_type, alert_channel) WHERE origin = 'trigger' DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF delivery = 'pending' THEN
      queued := queued + added;
    END IF;
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
  'Trigger: opens and closes incidents, queues the alerts a sync run''s new status calls for (repeats of an open incident recorded as suppressed), and notifies alertd if a dispatcher is waiting.';

DROP INDEX IF EXISTS idx_alert_incidents_open_news;
ALTER TABLE integration_alert_incidents DROP COLUMN IF EXISTS news_due_at;
ALTER TABLE integration_alert_incidents DROP COLUMN IF EXISTS news_group;
ALTER TABLE alertd_settings DROP COLUMN IF EXISTS group_interval;
ALTER TABLE alertd_settings DROP COLUMN IF EXISTS group_wait;

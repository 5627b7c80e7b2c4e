-- Rollback of 20251201_alertd_cheaper_repeats.sql: the trigger of 20251129_alertd_silent_failures.sql.
--
-- It puts back that function (a repeat read and decided step by step, written with the ON
-- CONFLICT guard), idx_alert_history_trigger_once over every alert the trigger writes, and drops
-- the address helper. The older index keeps one trigger alert per run, type and channel: of a
-- run whose status changed to failed twice while its incident was open, the later suppressed
-- rows are deleted (the older trigger would not have written them); no other row changes.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DELETE FROM integration_alert_history a
 USING integration_alert_history b
 WHERE a.origin = 'trigger' AND a.delivery_status = 'suppressed'
   AND b.origin = 'trigger' AND b.id <> a.id
   AND b.sync_history_id = a.sync_history_id AND b.alert_type = a.alert_type AND b.alert_channel = a.alert_channel
   AND (b.delivery_status <> 'suppressed' OR (b.created_at, b.id) < (a.created_at, a.id));

DO $$
BEGIN
  IF coalesce((SELECT pg_get_expr(x.indpred, x.indrelid) LIKE '%suppressed%' FROM pg_index x
                WHERE x.indexrelid = to_regclass('public.idx_alert_history_trigger_once')), true) THEN
    CREATE UNIQUE INDEX idx_alert_history_trigger_once_old
      ON public.integration_alert_history (sync_history_id, alert_type, alert_channel)
      WHERE origin = 'trigger';
    DROP INDEX IF EXISTS public.idx_alert_history_trigger_once;
    ALTER INDEX public.idx_alert_history_trigger_once_old RENAME TO idx_alert_history_trigger_once;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION alertd_enqueue_sync_alerts()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  config record;
  alert_kind text;
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
  opening boolean;
  first_wait interval;
  group_every interval;
  group_id uuid;
  due timestamptz := now();
  last_group uuid;
  last_due timestamptz;
  grid interval;
  details jsonb;
BEGIN
  alert_kind := CASE NEW.status
            WHEN 'failed' THEN 'failure'
            WHEN 'partial' THEN 'warning'
            WHEN 'success' THEN 'success'
          END;
  IF alert_kind IS NULL THEN
    RETURN NULL;
  END IF;

  -- The integration and its endpoint's open incident, in one look-up: a successful run with
  -- nothing open costs what it cost before incidents.
  SELECT c.alert_on_failure, c.alert_on_success, c.alert_emails, c.alert_webhook_url,
         c.configuration_metadata -> 'alertd' AS settings,
         i.id AS incident, i.severity, i.opened_at, i.news_email_alert_id, i.news_webhook_alert_id,
         i.news_due_at
    INTO config
    FROM public.integration_configs c
    LEFT JOIN public.integration_alert_incidents i
           ON i.integration_config_id = c.id
          AND i.endpoint_name = NEW.endpoint_name
          AND i.kind = 'run'
          AND i.resolved_at IS NULL
   WHERE c.id = NEW.integration_config_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  incident := config.incident;

  IF alert_kind = 'success' THEN
    IF incident IS NOT NULL THEN
      -- The endpoint recovered: close the incident and queue its recovery notice where the news
      -- went, whether or not alert_on_success is on. News still held for its group goes out
      -- first: the notice is due a second after it.
      UPDATE public.integration_alert_incidents i
         SET resolved_at = now(), resolved_by_sync_id = NEW.id
       WHERE i.id = incident AND i.resolved_at IS NULL;
      IF FOUND THEN
        INSERT INTO public.integration_alert_history
               (integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
                sent_at, delivery_status, origin, metadata, incident_id, next_attempt_at)
        SELECT NEW.integration_config_id, NEW.id, 'recovery', a.alert_channel, a.recipients,
               NULL, 'pending', 'trigger', jsonb_build_object('sync_status', NEW.status), incident,
               CASE WHEN config.news_due_at > now() THEN config.news_due_at + interval '1 second' ELSE now() END
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

  IF alert_kind <> 'success' THEN
    severity := config.severity;
    opened := config.opened_at;
    IF incident IS NULL THEN
      -- News: open the endpoint's incident, unless incidents are off for this integration
      -- (configuration_metadata -> 'alertd' ->> 'incidents') or by default (alertd_settings).
      SELECT coalesce(CASE lower(config.settings ->> 'incidents')
                        WHEN 'off' THEN false WHEN 'false' THEN false
                        WHEN 'on' THEN true WHEN 'true' THEN true
                      END, s.incidents, true),
             coalesce(CASE WHEN config.settings ->> 'group_wait_seconds' ~ '^[0-9]{1,6}$'
                           THEN make_interval(secs => (config.settings ->> 'group_wait_seconds')::integer) END,
                      s.group_wait, interval '0'),
             coalesce(CASE WHEN config.settings ->> 'group_interval_seconds' ~ '^[0-9]{1,6}$'
                           THEN make_interval(secs => (config.settings ->> 'group_interval_seconds')::integer) END,
                      s.group_interval, interval '1 minute')
        INTO opening, first_wait, group_every
        FROM (VALUES (1)) AS one
        LEFT JOIN public.alertd_settings s ON true;
      IF opening THEN
        -- Grouping: the news of the integration's endpoints that fail within group_interval of
        -- each other goes out as one message per channel. The first goes at once (after
        -- group_wait, none by default); one that fails while a group is held joins it; one that
        -- fails within group_interval after a group went out starts the next group. Held news
        -- is due at a point of a grid of a tenth of the interval (at least a second), at least
        -- group_interval after the first, and a group is named by its integration and due time:
        -- writers opening incidents of one integration at the same moment, none seeing the
        -- other's uncommitted incident, reach the same group. Of those, the one that takes the
        -- integration's advisory lock (tried, never waited for) is the first; the others are
        -- held.
        incident := gen_random_uuid();
        due := now() + first_wait;
        IF group_every > interval '0' THEN
          grid := greatest(group_every / 10, interval '1 second');
          SELECT i.news_group, i.news_due_at INTO last_group, last_due
            FROM public.integration_alert_incidents i
           WHERE i.integration_config_id = NEW.integration_config_id
             AND i.resolved_at IS NULL
             AND i.news_due_at > now() - group_every
           ORDER BY i.news_due_at DESC
           LIMIT 1;
          IF last_due > now() THEN
            due := last_due;
          ELSIF last_due IS NOT NULL THEN
            due := date_bin(grid, last_due + group_every - interval '1 microsecond', timestamptz 'epoch') + grid;
          ELSIF first_wait > interval '0' THEN
            due := date_bin(grid, now() + first_wait - interval '1 microsecond', timestamptz 'epoch') + grid;
          ELSIF NOT pg_try_advisory_xact_lock(1634497142, hashtext(NEW.integration_config_id::text)) THEN
            due := date_bin(grid, now() + group_every - interval '1 microsecond', timestamptz 'epoch') + grid;
          END IF;
          group_id := CASE WHEN last_due > now() THEN last_group
                           ELSE md5(NEW.integration_config_id::text || due::text)::uuid END;
        ELSE
          group_id := incident;
        END IF;
        -- The ids of the alerts that carry the news are chosen here, so that repeats can name
        -- them. Of two writers opening one incident at once, the second waits here for the first
        -- to commit, inserts nothing, and reads the incident the first opened: it is a repeat.
        INSERT INTO public.integration_alert_incidents
               (id, integration_config_id, endpoint_name, severity, opened_by_sync_id, news_sync_id,
                news_email_alert_id, news_webhook_alert_id, settings, news_group, news_due_at)
        VALUES (incident, NEW.integration_config_id, NEW.endpoint_name, alert_kind, NEW.id, NEW.id,
                CASE WHEN emails IS NOT NULL THEN gen_random_uuid() END,
                CASE WHEN webhook IS NOT NULL THEN gen_random_uuid() END,
                config.settings, group_id, due)
        ON CONFLICT (integration_config_id, endpoint_name, kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING news_email_alert_id, news_webhook_alert_id INTO email_alert, webhook_alert;
        opening := FOUND;
      END IF;
      IF NOT opening THEN
        -- Incidents are off, or another writer opened this one first.
        due := now();
        group_id := NULL;
        SELECT i.id, i.severity, i.opened_at, i.news_email_alert_id, i.news_webhook_alert_id
          INTO incident, severity, opened, email_alert, webhook_alert
          FROM public.integration_alert_incidents i
         WHERE i.integration_config_id = NEW.integration_config_id
           AND i.endpoint_name = NEW.endpoint_name
           AND i.kind = 'run'
           AND i.resolved_at IS NULL;
      END IF;
    ELSE
      email_alert := config.news_email_alert_id;
      webhook_alert := config.news_webhook_alert_id;
    END IF;

    IF severity = 'warning' AND alert_kind = 'failure' THEN
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

  -- News held for its group says so: alertd sends the alerts of one group as one message.
  details := CASE WHEN due > now() THEN jsonb_build_object('sync_status', NEW.status, 'group', group_id)
                  ELSE jsonb_build_object('sync_status', NEW.status) END;

  IF emails IS NOT NULL THEN
    INSERT INTO public.integration_alert_history
           (id, integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, delivery_error, origin, metadata, incident_id, next_attempt_at)
    VALUES (CASE WHEN delivery = 'pending' AND email_alert IS NOT NULL THEN email_alert ELSE gen_random_uuid() END,
            NEW.integration_config_id, NEW.id, alert_kind, 'email', emails,
            NULL, delivery, reason || coalesce(email_alert::text, 'none (the integration had no addresses then)'),
            'trigger', details, incident,
            CASE WHEN delivery = 'pending' THEN due END)
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
            NEW.integration_config_id, NEW.id, alert_kind, 'webhook', ARRAY[webhook],
            NULL, delivery, reason || coalesce(webhook_alert::text, 'none (the integration had no webhook URL then)'),
            'trigger', details, incident,
            CASE WHEN delivery = 'pending' THEN due END)
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
  'Trigger: opens and closes incidents, groups the news of an integration''s endpoints, queues the alerts a sync run''s new status calls for (repeats of an open incident recorded as suppressed), and notifies alertd if a dispatcher is waiting.';

DROP FUNCTION IF EXISTS alertd_alert_addresses(text[]);

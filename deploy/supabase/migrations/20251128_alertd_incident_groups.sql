-- 20251128_alertd_incident_groups.sql
--
-- Grouping: endpoints of one integration that fail within a short window go out as one message
-- per channel listing them, instead of one per endpoint.
--
-- The first endpoint to fail is news at once (after group_wait, none by default: the first
-- alert's latency is unchanged). Another endpoint of the same integration that fails within
-- group_interval (a minute by default) after it is held: its news goes out group_interval after
-- the first (rounded up to a tenth of the interval, at least a second), together with every
-- other endpoint that failed meanwhile, as one message per channel. The trigger decides the group when it opens the incident: it writes the group and its
-- due time on the incident (news_group, news_due_at), and on each held alert
-- (metadata -> 'group', next_attempt_at = the group's due time). alertd claims a group's alerts
-- together and sends them as one message; each alert still gets its own attempt and outcome.
--
-- Settings: public.alertd_settings.group_wait and group_interval (alertd run writes them from
-- ALERTD_GROUP_WAIT and ALERTD_GROUP_INTERVAL); an integration overrides them with
-- {"alertd": {"group_wait_seconds": 0, "group_interval_seconds": 60}} in
-- integration_configs.configuration_metadata (0 seconds of interval: no grouping).
--
-- Safe to apply more than once. Requires 20251127_alertd_incidents.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251128_alertd_incident_groups.rollback.sql.

-- 1. Settings ---------------------------------------------------------------------------------

-- At most an hour each (alertd refuses more): the trigger bins due times by the interval, which
-- a month could not do.
ALTER TABLE alertd_settings ADD COLUMN IF NOT EXISTS group_wait interval NOT NULL DEFAULT interval '0'
  CHECK (group_wait BETWEEN interval '0' AND interval '1 hour');
ALTER TABLE alertd_settings ADD COLUMN IF NOT EXISTS group_interval interval NOT NULL DEFAULT interval '1 minute'
  CHECK (group_interval BETWEEN interval '0' AND interval '1 hour');

COMMENT ON COLUMN alertd_settings.group_wait IS
  'How long the news of an integration''s first failing endpoint waits for others to join it (0: sent at once).';
COMMENT ON COLUMN alertd_settings.group_interval IS
  'After an integration''s news went out, how long its other endpoints'' news is held, to go out together as one message (0: no grouping).';

-- 2. The group of an incident's news ------------------------------------------------------------

ALTER TABLE integration_alert_incidents ADD COLUMN IF NOT EXISTS news_group uuid;
ALTER TABLE integration_alert_incidents ADD COLUMN IF NOT EXISTS news_due_at timestamptz;

COMMENT ON COLUMN integration_alert_incidents.news_group IS
  'The group whose message carried (or will carry) the news, named by the integration and the group''s due time.';
COMMENT ON COLUMN integration_alert_incidents.news_due_at IS
  'When the news was due to go out: at once, or when its group was.';

-- The trigger's look-up of an integration's newest group, among its open incidents: one index
-- probe however many endpoints are failing. Only incidents with a due time: the trigger's look-up
-- of an endpoint's open incident, which every run makes, cannot use it and keeps to
-- idx_alert_incidents_open (an index on open incidents alone drew that look-up onto itself, and
-- every writer's transaction scanned the integration's open incidents).
CREATE INDEX IF NOT EXISTS idx_alert_incidents_open_news
  ON integration_alert_incidents (integration_config_id, news_due_at)
  WHERE resolved_at IS NULL AND news_due_at IS NOT NULL;

-- 3. The trigger ------------------------------------------------------------------------------

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
         i.id AS incident, i.severity, i.opened_at, i.news_email_alert_id, i.news_webhook_alert_id,
         i.news_due_at
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

  IF kind <> 'success' THEN
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
        VALUES (incident, NEW.integration_config_id, NEW.endpoint_name, kind, NEW.id, NEW.id,
                CASE WHEN emails IS NOT NULL THEN gen_random_uuid() END,
                CASE WHEN webhook IS NOT NULL THEN gen_random_uuid() END,
                config.settings, group_id, due)
        ON CONFLICT (integration_config_id, endpoint_name) WHERE resolved_at IS NULL DO NOTHING
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

  -- News held for its group says so: alertd sends the alerts of one group as one message.
  details := CASE WHEN due > now() THEN jsonb_build_object('sync_status', NEW.status, 'group', group_id)
                  ELSE jsonb_build_object('sync_status', NEW.status) END;

  IF emails IS NOT NULL THEN
    INSERT INTO public.integration_alert_history
           (id, integration_config_id, sync_history_id, alert_type, alert_channel, recipients,
            sent_at, delivery_status, delivery_error, origin, metadata, incident_id, next_attempt_at)
    VALUES (CASE WHEN delivery = 'pending' AND email_alert IS NOT NULL THEN email_alert ELSE gen_random_uuid() END,
            NEW.integration_config_id, NEW.id, kind, 'email', emails,
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
            NEW.integration_config_id, NEW.id, kind, 'webhook', ARRAY[webhook],
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

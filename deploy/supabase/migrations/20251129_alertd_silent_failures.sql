-- 20251129_alertd_silent_failures.sql
--
-- Silent failures: an endpoint whose scheduled run did not start (overdue), and a run still
-- 'running' far longer than its endpoint usually takes (stuck), are alerts too.
--
-- alertd finds them itself, every sweep (a minute by default), on one instance at a time: no
-- writer changes anything for them, so nothing here costs the ETL runner's transactions but
-- the small index on running runs. Each is an incident of its own kind, beside the endpoint's
-- failure incident (kind 'run'): an overdue endpoint opens one (kind 'overdue') whose news is
-- an alert of type 'overdue' to the integration's addresses and URL; a run starting closes it
-- with a notice (alert_type 'recovery'). A stuck run opens one (kind 'stuck', opened_by_sync_id
-- the run) whose news is an alert of type 'stuck'; the run leaving 'running' closes it with a
-- notice, and its completion is alerted as usual by the trigger. Both are reminded like any
-- open incident. The incident's row and its alerts are written in one statement: a restart or
-- a second instance neither loses nor repeats one, and the unique index on open incidents,
-- now per kind, decides between two instances sweeping at once.
--
-- Settings: alertd's own (ALERTD_OVERDUE, ALERTD_OVERDUE_GRACE, ALERTD_STUCK,
-- ALERTD_STUCK_AFTER_MIN, ALERTD_STUCK_AFTER_MAX); an integration overrides them with
-- {"alertd": {"overdue": "off", "overdue_grace_minutes": 30, "stuck": "off",
-- "stuck_after_minutes": 90}} in integration_configs.configuration_metadata.
--
-- Safe to apply more than once. Requires 20251128_alertd_incident_groups.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251129_alertd_silent_failures.rollback.sql.

-- 1. New words for the alert history ----------------------------------------------------------

-- alert_type 'overdue' and 'stuck': the news of those incidents. Their notices and reminders
-- are 'recovery' and 'reminder', as for failures. The check is replaced as 20251127 replaced
-- it: NOT VALID, then validated, which reads the table without blocking its writers.
DO $$
DECLARE
  existing record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint c
              WHERE c.conrelid = 'public.integration_alert_history'::regclass
                AND c.conname = 'integration_alert_history_alert_type_check'
                AND pg_get_constraintdef(c.oid) LIKE '%''stuck''%') THEN
    RETURN;
  END IF;
  FOR existing IN
    SELECT c.conname
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = 'alert_type'
     WHERE c.conrelid = 'public.integration_alert_history'::regclass
       AND c.contype = 'c'
       AND c.conkey = ARRAY[a.attnum]
  LOOP
    EXECUTE format('ALTER TABLE public.integration_alert_history DROP CONSTRAINT %I', existing.conname);
  END LOOP;
  ALTER TABLE public.integration_alert_history ADD CONSTRAINT integration_alert_history_alert_type_check
    CHECK (alert_type IN ('failure', 'success', 'warning', 'recovery', 'reminder', 'overdue', 'stuck')) NOT VALID;
  ALTER TABLE public.integration_alert_history VALIDATE CONSTRAINT integration_alert_history_alert_type_check;
END
$$;

COMMENT ON COLUMN integration_alert_history.alert_type IS
  'failure, success, warning (a partial run), overdue (an endpoint''s scheduled run did not start), stuck (a run running far too long), recovery (an incident closed) or reminder (an incident still open).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (alertd''s sweep: an overdue endpoint, a stuck run, their notices, a reminder), test (alertd --test-notification) or manual.';

-- 2. Incidents of three kinds --------------------------------------------------------------------

ALTER TABLE integration_alert_incidents ADD COLUMN IF NOT EXISTS kind varchar(20) NOT NULL DEFAULT 'run';
ALTER TABLE integration_alert_incidents DROP CONSTRAINT IF EXISTS integration_alert_incidents_kind_check;
ALTER TABLE integration_alert_incidents ADD CONSTRAINT integration_alert_incidents_kind_check
  CHECK (kind IN ('run', 'overdue', 'stuck'));
ALTER TABLE integration_alert_incidents ADD COLUMN IF NOT EXISTS expected_at timestamptz;
ALTER TABLE integration_alert_incidents ADD COLUMN IF NOT EXISTS watch_from timestamptz;

COMMENT ON COLUMN integration_alert_incidents.kind IS
  'run (the endpoint''s runs fail: opened and closed by the trigger), overdue (its scheduled run did not start) or stuck (opened_by_sync_id is still running): opened and closed by alertd''s sweep.';
COMMENT ON COLUMN integration_alert_incidents.expected_at IS
  'For an overdue endpoint: when a run was due (next_sync_at, or the last start plus the interval).';
COMMENT ON COLUMN integration_alert_incidents.watch_from IS
  'For an overdue endpoint: a run started at or after this time (UTC) closes the incident.';
COMMENT ON COLUMN integration_alert_incidents.resolved_at IS
  'When the incident closed (a successful run, a run starting, the stuck run ending); NULL while open.';
COMMENT ON COLUMN integration_alert_incidents.resolved_by_sync_id IS
  'The run that closed the incident, if one did.';

-- At most one open incident per endpoint and kind. Built before the old one is dropped, so that
-- the trigger below, replaced in the same transaction, always has its arbiter.
CREATE UNIQUE INDEX IF NOT EXISTS idx_alert_incidents_open_kind
  ON integration_alert_incidents (integration_config_id, endpoint_name, kind)
  WHERE resolved_at IS NULL;
DROP INDEX IF EXISTS idx_alert_incidents_open;

-- 3. Running runs -------------------------------------------------------------------------------

-- The sweep's look-up of runs still running: a handful of rows however long the history. A run
-- enters it when it is written 'running' and leaves it with its status.
CREATE INDEX IF NOT EXISTS idx_sync_history_running
  ON integration_sync_history (sync_started_at)
  WHERE status = 'running';

-- 4. What the sweep remembers ------------------------------------------------------------------

-- The newest start the sweep has seen of each endpoint it looked up among the runs: an endpoint
-- is looked up again only once that start plus its interval and grace has passed, so a sweep of
-- a hundred thousand endpoints reads the runs of those due since the last sweep, not of all. A
-- cache alertd rebuilds as it goes: no foreign key (the platform renames and deletes endpoints
-- freely; a stale row is never read), and its rollback drops it with its rows.
CREATE TABLE IF NOT EXISTS alertd_endpoint_watch (
  integration_config_id uuid NOT NULL,
  endpoint_name varchar(100) NOT NULL,
  last_started_at timestamp NOT NULL,
  checked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (integration_config_id, endpoint_name)
);
COMMENT ON TABLE alertd_endpoint_watch IS
  'alertd''s cache: the newest run start its overdue sweep has seen of each endpoint (UTC, as sync_started_at).';
ALTER TABLE alertd_endpoint_watch ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON alertd_endpoint_watch FROM anon, authenticated;

-- 5. alertd's privileges ------------------------------------------------------------------------

-- The sweep reads endpoints' schedules and integrations' switches, and opens and closes the
-- incidents of these two kinds (the trigger alone writes those of kind 'run').
--
-- configuration_metadata holds the platform's credentials: alertd reads its key "alertd"
-- alone, through this function (which runs with its owner's rights), and the column stays
-- closed to it. A function rather than a view: a view would pin the platform's columns (its own
-- migrations could no longer drop or retype them); a plain SQL body records no dependency.
CREATE OR REPLACE FUNCTION alertd_integration_settings()
RETURNS TABLE (integration_config_id uuid, settings jsonb)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 100
AS $$
  SELECT c.id, c.configuration_metadata -> 'alertd'
    FROM public.integration_configs c
   WHERE c.configuration_metadata ? 'alertd'
$$;
COMMENT ON FUNCTION alertd_integration_settings() IS
  'The integrations that have alertd settings, and those settings (configuration_metadata -> ''alertd''): what alertd''s sweep may read of configuration_metadata.';
REVOKE ALL ON FUNCTION alertd_integration_settings() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION alertd_integration_settings() TO alertd_dispatcher;
GRANT SELECT (is_active) ON integration_configs TO alertd_dispatcher;
GRANT SELECT (id, integration_config_id, endpoint_name, endpoint_display_name, sync_frequency, is_enabled,
              last_sync_at, next_sync_at, sync_schedule_cron, average_sync_duration_seconds,
              created_at, updated_at)
  ON integration_sync_configs TO alertd_dispatcher;
GRANT SELECT, INSERT, UPDATE ON alertd_endpoint_watch TO alertd_dispatcher;
DROP POLICY IF EXISTS alertd_dispatcher_watch ON alertd_endpoint_watch;
CREATE POLICY alertd_dispatcher_watch ON alertd_endpoint_watch
  FOR ALL TO alertd_dispatcher USING (true) WITH CHECK (true);
GRANT INSERT ON integration_alert_incidents TO alertd_dispatcher;
GRANT UPDATE (resolved_at, resolved_by_sync_id) ON integration_alert_incidents TO alertd_dispatcher;

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_sync_configs;
CREATE POLICY alertd_dispatcher_read ON integration_sync_configs
  FOR SELECT TO alertd_dispatcher USING (true);
DROP POLICY IF EXISTS alertd_dispatcher_watch ON integration_alert_incidents;
CREATE POLICY alertd_dispatcher_watch ON integration_alert_incidents
  FOR INSERT TO alertd_dispatcher WITH CHECK (kind IN ('overdue', 'stuck'));

-- 6. The trigger --------------------------------------------------------------------------------

-- As 20251128's, but an endpoint's failure incident is the one of kind 'run': the look-up and
-- the race between two writers opening it keep to that kind.
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

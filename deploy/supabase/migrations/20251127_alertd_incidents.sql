-- 20251127_alertd_incidents.sql
--
-- Incidents: one failure of an endpoint is news, the next twenty are not.
--
-- A failed or partial run of an integration's endpoint opens an incident for (integration,
-- endpoint) unless one is open. The run that opens it (or turns a warning into a failure) sends
-- its alerts as before: that is the news. Later failed runs of the endpoint while the incident is
-- open still get their audit rows, written at once with delivery_status 'suppressed' and a reason
-- naming the incident and the alert that carried the news; nothing is sent for them. A successful
-- run closes the incident and queues a recovery notice (alert_type 'recovery') to the addresses
-- and URL that got the news, whether or not alert_on_success is on. alertd sends a reminder
-- (alert_type 'reminder', origin 'incident') for an incident still open after the repeat interval.
--
-- The state lives here, written in the writer's transaction: every alertd instance sees the
-- same incidents, a restart forgets nothing, and the unique index on open incidents decides which
-- of two concurrent failures is the news.
--
-- Settings: public.alertd_settings holds the defaults (alertd run writes them from its
-- ALERTD_INCIDENT* settings at start); an integration overrides them with the key "alertd" of
-- integration_configs.configuration_metadata, e.g. {"alertd": {"incidents": "off"}} for
-- today's behaviour (every failed run sends its alerts) or {"alertd": {"repeat_interval_minutes": 60}}.
--
-- Safe to apply more than once. Requires 20251126_alertd_notify_when_waited_for.sql and
-- 20251125_alertd_dispatcher_role.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251127_alertd_incidents.rollback.sql.

-- 1. New words for the alert history ----------------------------------------------------------

-- delivery_status 'suppressed': a repeat of an open incident, recorded and not sent.
-- alert_type 'recovery' and 'reminder': the incident's notices.
-- origin 'incident': a reminder, written by alertd.
-- Each column's CHECK is replaced by one that admits the new words (whatever name the platform's
-- version gave it); it is added NOT VALID and then validated, which reads the table without
-- blocking its writers. Nothing changes when the check is already this migration's.
DO $$
DECLARE
  wanted record;
  existing record;
  current_definition text;
BEGIN
  FOR wanted IN
    SELECT * FROM (VALUES
      ('delivery_status', 'suppressed', 'integration_alert_history_delivery_status_check',
       'CHECK (delivery_status IN (''pending'', ''sent'', ''failed'', ''bounced'', ''suppressed''))'),
      ('alert_type', 'reminder', 'integration_alert_history_alert_type_check',
       'CHECK (alert_type IN (''failure'', ''success'', ''warning'', ''recovery'', ''reminder''))'),
      ('origin', 'incident', 'integration_alert_history_origin_check',
       'CHECK (origin IN (''trigger'', ''manual'', ''test'', ''incident''))')
    ) AS w(column_name, new_word, constraint_name, definition)
  LOOP
    SELECT pg_get_constraintdef(c.oid) INTO current_definition
      FROM pg_constraint c
     WHERE c.conrelid = 'public.integration_alert_history'::regclass
       AND c.conname = wanted.constraint_name;
    IF current_definition IS NOT NULL AND current_definition LIKE '%''' || wanted.new_word || '''%' THEN
      CONTINUE;
    END IF;
    -- Every check on this column alone: the seed's, the platform's, whatever their names.
    FOR existing IN
      SELECT c.conname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attname = wanted.column_name
       WHERE c.conrelid = 'public.integration_alert_history'::regclass
         AND c.contype = 'c'
         AND c.conkey = ARRAY[a.attnum]
    LOOP
      EXECUTE format('ALTER TABLE public.integration_alert_history DROP CONSTRAINT %I', existing.conname);
    END LOOP;
    EXECUTE format('ALTER TABLE public.integration_alert_history ADD CONSTRAINT %I %s NOT VALID',
                   wanted.constraint_name, wanted.definition);
    EXECUTE format('ALTER TABLE public.integration_alert_history VALIDATE CONSTRAINT %I', wanted.constraint_name);
  END LOOP;
END
$$;

COMMENT ON COLUMN integration_alert_history.alert_type IS
  'failure, success, warning (a partial run), recovery (an incident closed) or reminder (an incident still open).';
COMMENT ON COLUMN integration_alert_history.delivery_status IS
  'pending, sent, failed, bounced, or suppressed (a repeat of an open incident: recorded, not sent).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (a reminder of an open incident), test (alertd --test-notification) or manual.';

-- The incident an alert belongs to (news, repeat, reminder or recovery). No foreign key: the
-- check would cost every writer's transaction, and both rows go with their integration.
ALTER TABLE integration_alert_history ADD COLUMN IF NOT EXISTS incident_id uuid;

-- An incident's alerts, oldest first: how many runs failed, the last error, the suppressed count
-- (alertd incidents, reminders, recovery notices, /metrics), without reading the integration's
-- whole history.
CREATE INDEX IF NOT EXISTS idx_alert_history_incident
  ON integration_alert_history (incident_id, created_at)
  WHERE incident_id IS NOT NULL;

COMMENT ON COLUMN integration_alert_history.incident_id IS
  'The incident this alert belongs to (integration_alert_incidents.id), if any.';

-- 2. Settings -----------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS alertd_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  incidents boolean NOT NULL DEFAULT true,
  repeat_interval interval NOT NULL DEFAULT interval '4 hours',
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text
);

INSERT INTO alertd_settings (singleton) VALUES (true) ON CONFLICT DO NOTHING;

COMMENT ON TABLE alertd_settings IS
  'alertd''s defaults for every integration (one row); alertd run writes them from its ALERTD_INCIDENT* settings at start. An integration overrides them in configuration_metadata -> ''alertd''.';
COMMENT ON COLUMN alertd_settings.incidents IS
  'Open incidents and suppress repeated failures (true), or send every failed run''s alerts (false).';
COMMENT ON COLUMN alertd_settings.repeat_interval IS
  'How long an incident stays open before alertd sends a reminder, and between reminders.';
COMMENT ON COLUMN alertd_settings.updated_by IS 'The alertd instance that last wrote the settings.';

ALTER TABLE alertd_settings ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON alertd_settings FROM anon, authenticated;

-- 3. Incidents ----------------------------------------------------------------------------------

-- The trigger writes a row when an incident opens, escalates (a failure after warnings) or
-- closes, never for a repeat: repeats of one endpoint by concurrent writers take no lock on it.
-- How many runs failed, and the last error, are read from the incident's alerts
-- (integration_alert_history.incident_id, indexed). No foreign keys: each check would cost the writer's
-- transaction; alertd_delete_integration_incidents() below removes an integration's incidents
-- with it.
CREATE TABLE IF NOT EXISTS integration_alert_incidents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  integration_config_id uuid NOT NULL,
  endpoint_name varchar(100) NOT NULL,
  severity varchar(20) NOT NULL CHECK (severity IN ('failure', 'warning')),
  opened_at timestamptz NOT NULL DEFAULT now(),
  opened_by_sync_id uuid,
  news_sync_id uuid,
  news_email_alert_id uuid,
  news_webhook_alert_id uuid,
  last_notified_at timestamptz NOT NULL DEFAULT now(),
  reminders_sent integer NOT NULL DEFAULT 0,
  settings jsonb,
  resolved_at timestamptz,
  resolved_by_sync_id uuid
);

COMMENT ON TABLE integration_alert_incidents IS
  'An endpoint of an integration failing: opened by a failed or partial run, closed by a successful one. Its alerts (news, suppressed repeats, reminders, recovery) carry its id in integration_alert_history.incident_id.';
COMMENT ON COLUMN integration_alert_incidents.severity IS 'failure, or warning while only partial runs failed.';
COMMENT ON COLUMN integration_alert_incidents.opened_by_sync_id IS 'The run that opened the incident.';
COMMENT ON COLUMN integration_alert_incidents.news_sync_id IS
  'The run whose alerts carried the news: the first, or the failure that followed warnings.';
COMMENT ON COLUMN integration_alert_incidents.news_email_alert_id IS 'The email alert that carried the news.';
COMMENT ON COLUMN integration_alert_incidents.news_webhook_alert_id IS 'The webhook alert that carried the news.';
COMMENT ON COLUMN integration_alert_incidents.last_notified_at IS 'When the news or the last reminder was queued.';
COMMENT ON COLUMN integration_alert_incidents.reminders_sent IS 'Reminders queued while the incident was open.';
COMMENT ON COLUMN integration_alert_incidents.settings IS
  'The integration''s configuration_metadata -> ''alertd'' when the incident opened.';
COMMENT ON COLUMN integration_alert_incidents.resolved_at IS 'When a successful run closed the incident; NULL while open.';
COMMENT ON COLUMN integration_alert_incidents.resolved_by_sync_id IS 'The successful run that closed the incident.';

-- At most one open incident per endpoint: the trigger's probe, its race between two writers
-- opening one incident, and alertd's reminder sweep all go through it.
CREATE UNIQUE INDEX IF NOT EXISTS idx_alert_incidents_open
  ON integration_alert_incidents (integration_config_id, endpoint_name)
  WHERE resolved_at IS NULL;

-- An integration's incidents go with it.
CREATE OR REPLACE FUNCTION alertd_delete_integration_incidents()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  DELETE FROM public.integration_alert_incidents i
   USING old_configs o
   WHERE i.integration_config_id = o.id;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION alertd_delete_integration_incidents() FROM PUBLIC;

DROP TRIGGER IF EXISTS alertd_delete_incidents_on_delete ON integration_configs;
CREATE TRIGGER alertd_delete_incidents_on_delete
  AFTER DELETE ON integration_configs
  REFERENCING OLD TABLE AS old_configs
  FOR EACH STATEMENT
  EXECUTE FUNCTION alertd_delete_integration_incidents();

ALTER TABLE integration_alert_incidents ENABLE ROW LEVEL SECURITY;

-- Tenant members read their own integrations' incidents, host and super admins all; anon nothing.
DROP POLICY IF EXISTS alert_incidents_select_policy ON integration_alert_incidents;
CREATE POLICY alert_incidents_select_policy ON integration_alert_incidents
  FOR SELECT TO authenticated
  USING (
    EXISTS (SELECT 1
              FROM integration_configs ic
              JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
             WHERE ic.id = integration_alert_incidents.integration_config_id
               AND tu.user_id = auth.uid())
    OR EXISTS (SELECT 1
                 FROM tenant_users tu
                WHERE tu.user_id = auth.uid()
                  AND tu.role IN ('host_admin', 'super_admin'))
  );

-- Written by the trigger and by alertd alone.
REVOKE ALL ON integration_alert_incidents FROM anon;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON integration_alert_incidents FROM authenticated;
GRANT SELECT ON integration_alert_incidents TO authenticated;

-- 4. alertd's privileges ------------------------------------------------------------------------

GRANT SELECT ON integration_alert_incidents TO alertd_dispatcher;
GRANT UPDATE (last_notified_at, reminders_sent) ON integration_alert_incidents TO alertd_dispatcher;
GRANT SELECT, UPDATE ON alertd_settings TO alertd_dispatcher;
GRANT UPDATE (incident_id) ON integration_alert_history TO alertd_dispatcher;

DROP POLICY IF EXISTS alertd_dispatcher_read ON integration_alert_incidents;
CREATE POLICY alertd_dispatcher_read ON integration_alert_incidents
  FOR SELECT TO alertd_dispatcher USING (true);
DROP POLICY IF EXISTS alertd_dispatcher_remind ON integration_alert_incidents;
CREATE POLICY alertd_dispatcher_remind ON integration_alert_incidents
  FOR UPDATE TO alertd_dispatcher USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS alertd_dispatcher_settings ON alertd_settings;
CREATE POLICY alertd_dispatcher_settings ON alertd_settings
  FOR ALL TO alertd_dispatcher USING (true) WITH CHECK (true);

-- alertd writes test alerts and incident reminders, nothing else.
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin IN ('test', 'incident'));

-- 5. The trigger ------------------------------------------------------------------------------

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

-- 20251204_alertd_message_limits.sql
--
-- A limit on the messages alertd sends for one integration: at most ALERTD_MESSAGE_LIMIT per
-- channel in each ALERTD_MESSAGE_LIMIT_WINDOW (120 an hour by default; an integration may set its
-- own under configuration_metadata -> 'alertd' -> 'message_limit'). Past it, the integration's
-- alerts of that channel are recorded 'held', not sent, with the reason; when the window is over,
-- one message per channel (alert_type 'held', origin 'limit') tells the integration's own
-- addresses how many were held and why. A loop (a receiver that writes a run back for each
-- webhook) or a flood of hand-written rows ends there.
--
-- - delivery_status 'held', alert_type 'held', origin 'limit' allowed;
-- - idx_alert_history_held: the held alerts not yet told, for the sweep that writes the notices
--   (empty but for the windows that reached a limit). Built in this transaction: it holds the
--   platform's writers on integration_alert_history for one scan of the table.
-- - alertd may insert rows of origin 'limit'.
--
-- Safe to apply more than once. Requires 20251130_alertd_destination_health.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251204_alertd_message_limits.rollback.sql.

DO $$
DECLARE
  wanted record;
  existing record;
  current_definition text;
BEGIN
  FOR wanted IN
    SELECT * FROM (VALUES
      ('alert_type', 'held', 'integration_alert_history_alert_type_check',
       'CHECK (alert_type IN (''failure'', ''success'', ''warning'', ''recovery'', ''reminder'', ''overdue'', ''stuck'', ''webhook_disabled'', ''held''))'),
      ('origin', 'limit', 'integration_alert_history_origin_check',
       'CHECK (origin IN (''trigger'', ''manual'', ''test'', ''incident'', ''destination'', ''limit''))'),
      ('delivery_status', 'held', 'integration_alert_history_delivery_status_check',
       'CHECK (delivery_status IN (''pending'', ''sent'', ''failed'', ''bounced'', ''suppressed'', ''held''))')
    ) AS w(column_name, new_word, constraint_name, definition)
  LOOP
    SELECT pg_get_constraintdef(c.oid) INTO current_definition
      FROM pg_constraint c
     WHERE c.conrelid = 'public.integration_alert_history'::regclass
       AND c.conname = wanted.constraint_name;
    IF current_definition IS NOT NULL AND current_definition LIKE '%''' || wanted.new_word || '''%' THEN
      CONTINUE;
    END IF;
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
  'failure, success, warning (a partial run), overdue (an endpoint''s scheduled run did not start), stuck (a run running far too long), recovery (an incident closed), reminder (an incident still open), webhook_disabled (the integration''s webhook URL was disabled) or held (how many of the integration''s alerts were held by its message limit).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (alertd''s sweep: an overdue endpoint, a stuck run, their notices, a reminder), destination (alertd disabled the integration''s webhook URL), limit (alertd held alerts over the integration''s message limit), test (alertd --test-notification) or manual.';
COMMENT ON COLUMN integration_alert_history.delivery_status IS
  'pending, sent, failed, bounced (every recipient refused for good), suppressed (a repeat of an open incident, never sent) or held (over the integration''s message limit, not sent: metadata -> ''held'' says which window; alertd replay sends it).';

CREATE INDEX IF NOT EXISTS idx_alert_history_held
  ON integration_alert_history (integration_config_id, alert_channel)
  WHERE delivery_status = 'held' AND NOT (metadata -> 'held' ? 'notice');

-- alertd writes test alerts, incidents' alerts, the notices of disabled URLs and of held
-- alerts, nothing else.
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin IN ('test', 'incident', 'destination', 'limit'));

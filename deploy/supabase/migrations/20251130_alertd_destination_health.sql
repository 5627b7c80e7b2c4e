-- 20251130_alertd_destination_health.sql
--
-- Destination health: what alertd knows of each place it delivers to (a webhook URL; the SMTP
-- relay it uses), shared by every instance, so that an outage longer than the retry schedule
-- loses nothing and a dead endpoint stops being called.
--
-- - A destination that keeps failing (transport errors, timeouts, 5xx, 429) has its circuit
--   opened: its alerts wait, their attempts unspent (set aside: next_attempt_at NULL and
--   metadata -> 'parked'), and one probe at a time (one alert, on one instance) is sent,
--   spaced by a growing wait with jitter and by the receiver's Retry-After. The first success
--   closes the circuit and the waiting alerts are due again, oldest first.
-- - A webhook URL is disabled by a 410 Gone, or after failing without a success for
--   ALERTD_DESTINATION_DISABLE_AFTER (5 days by default). Its alerts are then recorded failed,
--   not sent, and the integrations that use it get one email (alert_type 'webhook_disabled',
--   origin 'destination') saying so. `alertd endpoints enable <url>` enables it again.
--
-- alertd writes this table as it records outcomes; no writer's transaction reads or writes it.
--
-- Safe to apply more than once. Requires 20251129_alertd_silent_failures.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251130_alertd_destination_health.rollback.sql.

-- 1. New words for the alert history ----------------------------------------------------------

-- alert_type 'webhook_disabled': the email that tells an integration's addresses that its
-- webhook URL was disabled. origin 'destination': written by alertd when it disabled one.
DO $$
DECLARE
  wanted record;
  existing record;
  current_definition text;
BEGIN
  FOR wanted IN
    SELECT * FROM (VALUES
      ('alert_type', 'webhook_disabled', 'integration_alert_history_alert_type_check',
       'CHECK (alert_type IN (''failure'', ''success'', ''warning'', ''recovery'', ''reminder'', ''overdue'', ''stuck'', ''webhook_disabled''))'),
      ('origin', 'destination', 'integration_alert_history_origin_check',
       'CHECK (origin IN (''trigger'', ''manual'', ''test'', ''incident'', ''destination''))')
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
  'failure, success, warning (a partial run), overdue (an endpoint''s scheduled run did not start), stuck (a run running far too long), recovery (an incident closed), reminder (an incident still open) or webhook_disabled (the integration''s webhook URL was disabled).';
COMMENT ON COLUMN integration_alert_history.origin IS
  'Who wrote the alert: trigger (a sync run changed status), incident (alertd''s sweep: an overdue endpoint, a stuck run, their notices, a reminder), destination (alertd disabled the integration''s webhook URL), test (alertd --test-notification) or manual.';
COMMENT ON COLUMN integration_alert_history.next_attempt_at IS
  'When alertd may next try to deliver a pending alert. NULL for an alert waiting for its destination (metadata -> ''parked'' says which and since when), and for alerts written before alertd was installed.';

-- 2. The destinations -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS alertd_destinations (
  destination text PRIMARY KEY,
  channel varchar(20) NOT NULL CHECK (channel IN ('webhook', 'email')),
  state varchar(20) NOT NULL DEFAULT 'healthy' CHECK (state IN ('healthy', 'failing', 'disabled')),
  consecutive_failures integer NOT NULL DEFAULT 0,
  failing_since timestamptz,
  last_error text,
  last_http_status integer,
  last_failure_at timestamptz,
  last_success_at timestamptz,
  circuit_opened_at timestamptz,
  next_probe_at timestamptz,
  probes_failed integer NOT NULL DEFAULT 0,
  probe_by text,
  probe_until timestamptz,
  disabled_at timestamptz,
  disabled_reason text,
  disabled_by text,
  enabled_at timestamptz,
  enabled_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE alertd_destinations IS
  'alertd''s view of each place it delivers to: a webhook URL (as in the alerts'' recipients) or its SMTP relay (smtp://host:port). Shared by every instance.';
COMMENT ON COLUMN alertd_destinations.state IS
  'healthy (the last attempt reached it), failing (consecutive_failures since failing_since) or disabled (410 Gone, or failing too long: its alerts are not sent).';
COMMENT ON COLUMN alertd_destinations.circuit_opened_at IS
  'Set while its circuit is open: its alerts wait, and one probe at a time is sent, at next_probe_at.';
COMMENT ON COLUMN alertd_destinations.probe_by IS
  'The alertd instance sending the probe, until probe_until.';
COMMENT ON COLUMN alertd_destinations.disabled_by IS
  'Who disabled it: an alertd instance, for a 410 Gone or a long failure.';
COMMENT ON COLUMN alertd_destinations.enabled_by IS
  'Who enabled it again (alertd endpoints enable), and enabled_at when.';

-- The claim reads the open circuits for each batch: a handful of rows, through this index.
CREATE INDEX IF NOT EXISTS idx_alertd_destinations_circuit
  ON alertd_destinations (next_probe_at)
  WHERE circuit_opened_at IS NOT NULL;

-- URLs are tenants' endpoints, some with tokens in their path: the table is alertd's and the
-- operators' alone.
ALTER TABLE alertd_destinations ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON alertd_destinations FROM anon, authenticated;

-- 3. alertd's privileges ------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON alertd_destinations TO alertd_dispatcher;
DROP POLICY IF EXISTS alertd_dispatcher_destinations ON alertd_destinations;
CREATE POLICY alertd_dispatcher_destinations ON alertd_destinations
  FOR ALL TO alertd_dispatcher USING (true) WITH CHECK (true);

-- alertd writes test alerts, incidents' alerts and the notices of disabled URLs, nothing else.
DROP POLICY IF EXISTS alertd_dispatcher_test_alerts ON integration_alert_history;
CREATE POLICY alertd_dispatcher_test_alerts ON integration_alert_history
  FOR INSERT TO alertd_dispatcher WITH CHECK (origin IN ('test', 'incident', 'destination'));

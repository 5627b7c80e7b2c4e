-- 20251126_alertd_notify_when_waited_for.sql
--
-- The trigger notifies alertd only while a dispatcher is waiting for work.
--
-- A transaction that notifies takes a lock that every notifying transaction of the cluster
-- shares, and holds it through its commit's flush to disk: notifying writers commit one at a
-- time. With 8 concurrent writers of integration_sync_history that cost more than half their
-- throughput (`alertd bench --only trigger`). A notification is only worth it when a dispatcher
-- is idle; a busy one claims again as soon as it has room and finds the new rows anyway.
--
-- The handshake, through one advisory lock, key (1634497140, 1), "the waiting lock":
--   * alertd takes it, exclusively and for its session, when a claim finds nothing due, and
--     claims once more before it sleeps; it lets it go when it finds a backlog (a full claim);
--   * the trigger tries it shared (pg_try_advisory_xact_lock_shared) and notifies only when the
--     try fails: a dispatcher holds it, or is waiting to take it. A successful try is held until
--     the writer's transaction ends, so alertd cannot take the lock, and then make its last claim
--     before sleeping, while the row is still uncommitted: no alert waits for the slow poll.
--
-- The function also skips the address query when an integration has no addresses, and the
-- credential redaction when its URL has no '@': the trigger runs in every writer's transaction.
--
-- Safe to apply more than once. Requires 20251124_alertd_outbox.sql.
-- Apply by hand with: psql "$DATABASE_URL" --single-transaction -f <this file>
-- Undo with deploy/supabase/rollbacks/20251126_alertd_notify_when_waited_for.rollback.sql.

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

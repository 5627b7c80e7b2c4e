-- The ETL platform's own version of the seed migration, as it was applied to its production
-- database through the SQL editor (its file supabase/migrations/20251122_add_retry_and_alerts_v2.sql),
-- with its defects: an IMMUTABLE function that reads now(), a schedule_sync_retry that returns true
-- for unknown ids and never counts retries, policies that cannot be created twice, a view with its
-- owner's rights. Tests apply it first and then alertd's migrations over it; its function
-- signatures are the contract alertd's version keeps (FunctionSignatureTests).

-- Retry tracking
ALTER TABLE integration_sync_history
ADD COLUMN IF NOT EXISTS retry_count INTEGER DEFAULT 0,
ADD COLUMN IF NOT EXISTS max_retries INTEGER DEFAULT 3,
ADD COLUMN IF NOT EXISTS retry_at TIMESTAMP,
ADD COLUMN IF NOT EXISTS original_sync_id UUID REFERENCES integration_sync_history(id) ON DELETE SET NULL,
ADD COLUMN IF NOT EXISTS is_retry BOOLEAN DEFAULT false;

CREATE INDEX IF NOT EXISTS idx_sync_history_retry_at ON integration_sync_history(retry_at) WHERE retry_at IS NOT NULL AND status = 'failed';

-- Alert configuration
ALTER TABLE integration_configs
ADD COLUMN IF NOT EXISTS alert_on_failure BOOLEAN DEFAULT true,
ADD COLUMN IF NOT EXISTS alert_on_success BOOLEAN DEFAULT false,
ADD COLUMN IF NOT EXISTS alert_emails TEXT[],
ADD COLUMN IF NOT EXISTS alert_webhook_url TEXT;

-- Incremental sync
ALTER TABLE integration_sync_configs
ADD COLUMN IF NOT EXISTS sync_mode VARCHAR(20) DEFAULT 'full' CHECK (sync_mode IN ('full', 'incremental', 'delta')),
ADD COLUMN IF NOT EXISTS last_sync_timestamp TIMESTAMP,
ADD COLUMN IF NOT EXISTS incremental_key VARCHAR(100),
ADD COLUMN IF NOT EXISTS watermark_value TEXT;

-- Alert history
CREATE TABLE IF NOT EXISTS integration_alert_history (
  id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
  integration_config_id UUID NOT NULL REFERENCES integration_configs(id) ON DELETE CASCADE,
  sync_history_id UUID REFERENCES integration_sync_history(id) ON DELETE SET NULL,
  alert_type VARCHAR(20) NOT NULL CHECK (alert_type IN ('failure', 'success', 'warning')),
  alert_channel VARCHAR(20) NOT NULL CHECK (alert_channel IN ('email', 'webhook', 'sms')),
  recipients TEXT[],
  subject TEXT,
  message TEXT,
  sent_at TIMESTAMP DEFAULT NOW(),
  delivery_status VARCHAR(20) DEFAULT 'pending' CHECK (delivery_status IN ('pending', 'sent', 'failed', 'bounced')),
  delivery_error TEXT,
  metadata JSONB DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS idx_alert_history_config ON integration_alert_history(integration_config_id, sent_at DESC);
CREATE INDEX IF NOT EXISTS idx_alert_history_sync ON integration_alert_history(sync_history_id);
CREATE INDEX IF NOT EXISTS idx_alert_history_status ON integration_alert_history(delivery_status);

-- Helper functions
CREATE OR REPLACE FUNCTION calculate_next_retry(retry_count INTEGER, base_delay_seconds INTEGER DEFAULT 60)
RETURNS TIMESTAMP AS $$
BEGIN
  RETURN NOW() + (LEAST(base_delay_seconds * POWER(2, retry_count), 3600) || ' seconds')::INTERVAL;
END;
$$ LANGUAGE plpgsql IMMUTABLE;

CREATE OR REPLACE FUNCTION schedule_sync_retry(sync_id UUID, max_retry_attempts INTEGER DEFAULT 3)
RETURNS BOOLEAN AS $$
DECLARE
  current_retry_count INTEGER;
BEGIN
  SELECT retry_count INTO current_retry_count
  FROM integration_sync_history
  WHERE id = sync_id;

  IF current_retry_count >= max_retry_attempts THEN
    RETURN false;
  END IF;

  UPDATE integration_sync_history
  SET retry_at = calculate_next_retry(current_retry_count + 1),
      max_retries = max_retry_attempts
  WHERE id = sync_id;

  RETURN true;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION update_sync_watermark(sync_config_id UUID, new_watermark_value TEXT)
RETURNS VOID AS $$
BEGIN
  UPDATE integration_sync_configs
  SET last_sync_timestamp = NOW(),
      watermark_value = new_watermark_value,
      updated_at = NOW()
  WHERE id = sync_config_id;
END;
$$ LANGUAGE plpgsql;

-- Row-level security
ALTER TABLE integration_alert_history ENABLE ROW LEVEL SECURITY;

CREATE POLICY alert_history_select_policy ON integration_alert_history
FOR SELECT
USING (
  integration_config_id IN (
    SELECT ic.id FROM integration_configs ic
    JOIN tenant_users tu ON tu.tenant_id = ic.tenant_id
    WHERE tu.user_id = auth.uid()
  )
  OR EXISTS (
    SELECT 1 FROM tenant_users
    WHERE user_id = auth.uid() AND role IN ('host_admin', 'super_admin')
  )
);

CREATE POLICY alert_history_insert_policy ON integration_alert_history
FOR INSERT
WITH CHECK (
  EXISTS (
    SELECT 1 FROM tenant_users
    WHERE user_id = auth.uid() AND role IN ('host_admin', 'super_admin', 'tenant_admin')
  )
);

GRANT EXECUTE ON FUNCTION calculate_next_retry TO authenticated;
GRANT EXECUTE ON FUNCTION schedule_sync_retry TO authenticated;
GRANT EXECUTE ON FUNCTION update_sync_watermark TO authenticated;

-- Views
CREATE OR REPLACE VIEW pending_sync_retries AS
SELECT
  sh.id,
  sh.integration_config_id,
  sh.endpoint_name,
  sh.retry_count,
  sh.max_retries,
  sh.retry_at,
  sh.error_message,
  ic.integration_name,
  ic.tenant_id
FROM integration_sync_history sh
JOIN integration_configs ic ON ic.id = sh.integration_config_id
WHERE sh.status = 'failed'
  AND sh.retry_at IS NOT NULL
  AND sh.retry_at <= NOW()
  AND sh.retry_count < sh.max_retries
ORDER BY sh.retry_at ASC;

GRANT SELECT ON pending_sync_retries TO authenticated;

-- Rollback of 20251203_alertd_signing_secrets.sql: the secrets per integration are dropped, and
-- with them every integration's signing secret. Receivers that verify with their integration's
-- secret stop verifying: before rolling back, give alertd ALERTD_WEBHOOK_SECRET (and those
-- receivers that secret), or expect unsigned webhooks.
--
-- By hand: psql "$DATABASE_URL" --single-transaction -f <this file>

DROP FUNCTION IF EXISTS alertd_signing_secrets(uuid[]);
DROP TABLE IF EXISTS alertd_signing_secrets;
DROP FUNCTION IF EXISTS alertd_new_signing_secret();

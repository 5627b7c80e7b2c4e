#!/usr/bin/env bash
# Sets up alertd on a fresh Debian 12 machine with the Swift toolchain, for a local trial:
# installs what is missing, starts a local PostgreSQL 15 (kept between runs), creates the
# database `alertd_dev` with the platform's tables, applies alertd's migrations, and runs
# alertd's database commands against it. Safe to run again.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bash deploy/dev/install-deps.sh

echo "setup.sh: building alertd (release)"
swift build -c release --product alertd
alertd="$(swift build -c release --show-bin-path)/alertd"

server_url="$(bash deploy/dev/pg.sh start)"
database_url="${server_url%/postgres}/alertd_dev"
if ! psql "$server_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'alertd_dev'" | grep -q 1; then
  psql "$server_url" -qc "CREATE DATABASE alertd_dev"
  fresh=1
else
  fresh=0
fi
export ALERTD_DATABASE_URL="$database_url"

if [ "$(psql "$database_url" -Atqc "SELECT to_regclass('public.integration_sync_history') IS NULL")" = "t" ]; then
  "$alertd" db init-platform
fi
"$alertd" db migrate
"$alertd" db status
"$alertd" db verify

if [ "$fresh" = 1 ]; then
  echo
  echo "setup.sh: a failed sync run, to show the alert it queues:"
  psql "$database_url" -q <<'SQL'
WITH t AS (INSERT INTO tenants (name) VALUES ('Demo tenant') RETURNING id),
     c AS (INSERT INTO integration_configs (tenant_id, integration_type, integration_name, alert_emails, alert_webhook_url)
           SELECT id, 'paycom', 'Paycom (demo)', ARRAY['ops@example.com'], 'https://hooks.example.com/alertd' FROM t RETURNING id)
INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status, error_message)
SELECT id, 'employees', now() - interval '42 seconds', 'failed', 'HTTP 401 from Paycom: token expired' FROM c;
SQL
  psql "$database_url" -c "SELECT alert_type, alert_channel, recipients, delivery_status, next_attempt_at FROM integration_alert_history"
fi

cat <<MSG

alertd is set up. Use it with:
  export ALERTD_DATABASE_URL="\$(bash deploy/dev/pg.sh url | sed 's,/postgres\$,/alertd_dev,')"
  $alertd db status
Stop the local PostgreSQL with: bash deploy/dev/pg.sh stop
MSG

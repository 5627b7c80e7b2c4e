#!/usr/bin/env bash
# alertd on a fresh Debian 12 machine with the Swift toolchain, doing its job locally: installs
# what is missing, builds alertd, starts (or reuses) a local PostgreSQL 15 with the platform's
# tables and alertd's migrations in the database `alertd_dev`, a local SMTP sink and a local
# webhook receiver that verifies signatures, starts `alertd run` as its least-privilege role,
# fails a sync run, and prints the email and the webhook that arrived and `alertd history`.
# Safe to run again: what runs is reused, alertd is restarted on the new build.
#
#   bash deploy/dev/setup.sh           all of the above
#   bash deploy/dev/setup.sh fail      fail another sync run and show what arrived: nothing while
#                                      the endpoint's incident is open (the run's alerts are
#                                      recorded suppressed)
#   bash deploy/dev/setup.sh recover   a successful run: the incident closes, its recovery notice
#                                      arrives
#   bash deploy/dev/setup.sh stop      stop alertd, the sink, the receiver and PostgreSQL
#
# Everything it keeps (logs, the mail and webhooks received, secrets for this machine only) is
# in .alertd-dev/ of the checkout.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

state="$root/.alertd-dev"
mkdir -p "$state"
chmod 700 "$state"

say() { printf 'setup.sh: %s\n' "$*"; }

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

stop_one() {
  if alive "$1"; then
    local pid
    pid="$(cat "$state/$1.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "$1 did not stop within 30 s of SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    say "stopped $1"
  fi
  rm -f "$state/$1.pid"
}

# A secret of this machine's, made once: a file of its own, readable by this user only.
secret_file() {
  local file="$state/$1"
  if [ ! -s "$file" ]; then
    ( umask 077; printf '%s%s\n' "$2" "$(/usr/bin/python3 -c 'import base64, os; print(base64.b64encode(os.urandom(24)).decode())')" >"$file" )
  fi
  printf '%s' "$file"
}

# Starts a helper in its own session (so it outlives this script), logging to $state/<name>.out,
# and waits for its "listening on <port>" line. A port it had before is asked for again, so the
# URLs already in the database stay right.
start_helper() {
  local name="$1"; shift
  if alive "$name"; then
    say "reusing the $name on port $(cat "$state/$name.port")"
    return 0
  fi
  local port=0
  [ -f "$state/$name.port" ] && port="$(cat "$state/$name.port")"
  for try in "$port" 0; do
    setsid /usr/bin/python3 "$@" --port "$try" >"$state/$name.out" 2>&1 < /dev/null &
    echo $! >"$state/$name.pid"
    for _ in $(seq 1 100); do
      if grep -q '^listening on ' "$state/$name.out" 2>/dev/null; then
        sed -n 's/^listening on //p' "$state/$name.out" | head -1 >"$state/$name.port"
        say "started the $name on port $(cat "$state/$name.port")"
        return 0
      fi
      kill -0 "$(cat "$state/$name.pid")" 2>/dev/null || break
      sleep 0.1
    done
    kill "$(cat "$state/$name.pid")" 2>/dev/null || true
    [ "$try" = 0 ] && { cat "$state/$name.out" >&2; say "the $name did not start"; exit 1; }
  done
}

psql_dev() { psql "$database_url" -v ON_ERROR_STOP=1 -Atq "$@"; }

received() { if [ -f "$state/$1.jsonl" ]; then wc -l <"$state/$1.jsonl"; else echo 0; fi; }

# Finishes a sync run of the demo integration's endpoint with status $1 (failed or success), as
# the ETL runner would, waits until alertd has delivered the alerts it queued, and prints what
# arrived. A failure while the endpoint's incident is open queues none: its alerts are recorded
# suppressed, and the audit shows them.
finish_a_run() {
  local status="$1" lines_mail lines_hooks run
  lines_mail=$(received mail)
  lines_hooks=$(received webhooks)
  run="$(psql_dev <<SQL
INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status)
VALUES ('$integration', 'employees', now() - interval '42 seconds', 'running')
RETURNING id \gset
UPDATE integration_sync_history
   SET status = '$status', sync_completed_at = now(), records_synced = 118,
       records_failed = CASE '$status' WHEN 'failed' THEN 7 ELSE 0 END,
       error_message = CASE '$status' WHEN 'failed' THEN 'HTTP 401 from Paycom: token expired' END
 WHERE id = :'id';
SELECT :'id';
SQL
)"
  local queued
  queued="$(psql_dev -c "SELECT count(*) FROM integration_alert_history WHERE sync_history_id = '$run' AND delivery_status <> 'suppressed'")"
  if [ "$queued" = 0 ]; then
    say "sync run $run ($status, endpoint employees of 'Paycom (demo)') queued no alert:"
    if [ "$status" = failed ]; then
      say "the endpoint's incident is open, so this repeat is recorded suppressed (see below);"
      say "bash deploy/dev/setup.sh recover closes it with a recovery notice"
    else
      say "no incident was open and alert_on_success is off"
    fi
  else
    say "sync run $run ($status, endpoint employees of 'Paycom (demo)'); waiting for alertd to deliver its alerts"
    local pending=2
    for _ in $(seq 1 300); do
      pending="$(psql_dev -c "SELECT count(*) FROM integration_alert_history WHERE sync_history_id = '$run' AND delivery_status = 'pending'")"
      [ "$pending" = 0 ] && [ "$(received mail)" -gt "$lines_mail" ] && [ "$(received webhooks)" -gt "$lines_hooks" ] && break
      alive alertd || { tail -20 "$state/alertd.log" >&2; say "alertd stopped; its log is above"; exit 1; }
      sleep 0.2
    done
    if [ "$pending" != 0 ]; then
      tail -20 "$state/alertd.log" >&2
      say "the alerts of run $run were not delivered within 60 s; alertd's log is above"
      exit 1
    fi
  fi
  /usr/bin/python3 - "$state/mail.jsonl" "$lines_mail" "$state/webhooks.jsonl" "$lines_hooks" <<'PY'
import email, email.policy, json, sys
mail_log, mail_seen, hook_log, hooks_seen = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for line in open(mail_log, encoding="utf-8").read().splitlines()[mail_seen:]:
    entry = json.loads(line)
    message = email.message_from_string(entry["data"], policy=email.policy.default)
    print(f"\n== The email, as the SMTP sink received it (to {', '.join(entry['rcpt_tos'])}) ==")
    print(f"Subject: {message['subject']}\n")
    print(message.get_body(preferencelist=("plain",)).get_content().rstrip())
for line in open(hook_log, encoding="utf-8").read().splitlines()[hooks_seen:]:
    entry = json.loads(line)
    verdict = "verified" if entry.get("signature_valid") else "NOT VERIFIED"
    print(f"\n== The webhook, as the receiver got it: POST {entry['path']}, signature {verdict} ==")
    print(json.dumps(json.loads(entry["body"]), indent=2))
    if not entry.get("signature_valid"):
        sys.exit("setup.sh: the webhook's signature did not verify")
PY
  echo
  echo "== alertd history --sync-run $run =="
  ALERTD_DATABASE_URL_FILE="$state/alertd-database-url" "$alertd" history --sync-run "$run"
  echo
  echo "== alertd incidents =="
  ALERTD_DATABASE_URL_FILE="$state/alertd-database-url" "$alertd" incidents --all --limit 5
}

case "${1:-}" in
  stop)
    stop_one alertd
    stop_one smtp-sink
    stop_one webhook-receiver
    bash deploy/dev/pg.sh stop
    say "stopped the local PostgreSQL; start everything again with: bash deploy/dev/setup.sh"
    exit 0
    ;;
  ""|fail|recover) ;;
  *) echo "usage: $0 [fail|recover|stop]" >&2; exit 2 ;;
esac

bash deploy/dev/install-deps.sh

say "building alertd (release)"
build_release --product alertd
alertd="$(swift build "${release[@]}" --show-bin-path)/alertd"

server_url="$(bash deploy/dev/pg.sh start)"
database_url="${server_url%/postgres}/alertd_dev"

if [ -z "${1:-}" ]; then
  if ! psql "$server_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'alertd_dev'" | grep -q 1; then
    psql "$server_url" -qc "CREATE DATABASE alertd_dev"
  fi
  export ALERTD_DATABASE_URL="$database_url"
  if [ "$(psql_dev -c "SELECT to_regclass('public.integration_sync_history') IS NULL")" = "t" ]; then
    "$alertd" db init-platform
  fi
  "$alertd" db migrate
  "$alertd" db status
  # Every check's line when one fails; the summary otherwise.
  verified="$("$alertd" db verify 2>&1)" || { printf '%s\n' "$verified" >&2; exit 1; }
  printf '%s\n' "$verified" | tail -1
  unset ALERTD_DATABASE_URL
fi

# alertd logs in as its least-privilege role, as in production (deploy/supabase/alertd-login.sql).
db_password_file="$(secret_file alertd-db-password '')"
# The notices go with a SET in the session, not PGOPTIONS: a pooler (PgBouncer) refuses the
# "options" startup parameter.
psql "$server_url" -q -v ON_ERROR_STOP=1 -v user=alertd -v password="$(cat "$db_password_file")" \
  -c 'SET client_min_messages = warning' -f deploy/supabase/alertd-login.sql >/dev/null
( umask 077; printf '%s\n' "$(/usr/bin/python3 - "$database_url" "$(cat "$db_password_file")" <<'PY'
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
netloc = f"alertd:{urllib.parse.quote(sys.argv[2], safe='')}@{url.hostname}:{url.port}"
print(urllib.parse.urlunsplit((url.scheme, netloc, url.path, url.query, url.fragment)))
PY
)" >"$state/alertd-database-url" )

# The demo tenant and integration; its addresses point at the local sink and receiver below.
integration="$(psql_dev <<SQL
INSERT INTO tenants (name)
SELECT 'Demo tenant' WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = 'Demo tenant');
INSERT INTO integration_configs (tenant_id, integration_type, integration_name)
SELECT id, 'paycom', 'Paycom (demo)' FROM tenants WHERE name = 'Demo tenant'
ON CONFLICT (tenant_id, integration_type, environment) DO NOTHING;
SELECT id FROM integration_configs WHERE integration_name = 'Paycom (demo)';
SQL
)"
# The integration's own signing secret (made now if it has none), as its tenant's admins read
# it: the receiver verifies every webhook with it.
webhook_secret="$(ALERTD_DATABASE_URL="$database_url" "$alertd" secrets show --integration-id "$integration" | awk '$1 == "current" { print $2 }')"
[ -n "$webhook_secret" ] || { say "alertd secrets show gave no secret for the demo integration"; exit 1; }
start_helper smtp-sink deploy/dev/smtp-sink.py --log "$state/mail.jsonl"
start_helper webhook-receiver deploy/dev/webhook-receiver.py --log "$state/webhooks.jsonl" --secret "$webhook_secret"
smtp_port="$(cat "$state/smtp-sink.port")"
receiver_port="$(cat "$state/webhook-receiver.port")"
psql_dev >/dev/null <<SQL
UPDATE integration_configs
   SET alert_on_failure = true,
       alert_emails = ARRAY['ops@example.com'],
       alert_webhook_url = 'http://127.0.0.1:$receiver_port/alertd-demo'
 WHERE id = '$integration';
SQL

if [ -z "${1:-}" ] || ! alive alertd; then
  stop_one alertd
  ALERTD_DATABASE_URL_FILE="$state/alertd-database-url" \
  ALERTD_SMTP_URL="smtp://127.0.0.1:$smtp_port" \
  ALERTD_SMTP_TLS=none \
  ALERTD_SMTP_FROM=alerts@alertd.example.com \
  ALERTD_WEBHOOK_ALLOW=127.0.0.1 \
  ALERTD_TEMPLATES_DIR="$root/templates" \
  ALERTD_SQL_DIR="$root/deploy" \
  ALERTD_LOG_LEVEL=info \
    setsid "$alertd" run >"$state/alertd.log" 2>&1 < /dev/null &
  echo $! >"$state/alertd.pid"
  for _ in $(seq 1 150); do
    grep -q 'alertd started' "$state/alertd.log" 2>/dev/null && break
    alive alertd || break
    sleep 0.2
  done
  grep -q 'alertd started' "$state/alertd.log" 2>/dev/null \
    || { cat "$state/alertd.log" >&2; say "alertd did not start; its log is above"; exit 1; }
  say "started alertd run (pid $(cat "$state/alertd.pid")), logging to .alertd-dev/alertd.log"
fi

if [ "${1:-}" = recover ]; then finish_a_run success; else finish_a_run failed; fi

cat <<MSG

alertd is running and delivering, locally:
  email      the SMTP sink on 127.0.0.1:$smtp_port writes each message to .alertd-dev/mail.jsonl
  webhooks   the receiver on 127.0.0.1:$receiver_port verifies each signature and writes it to .alertd-dev/webhooks.jsonl
  alertd     logs to .alertd-dev/alertd.log
  database   psql "\$(bash deploy/dev/pg.sh url | sed 's,/postgres\$,/alertd_dev,')"

Fail another sync run and see what arrives:   bash deploy/dev/setup.sh fail
Let the endpoint succeed again:               bash deploy/dev/setup.sh recover
See the audit:   ALERTD_DATABASE_URL_FILE=.alertd-dev/alertd-database-url $alertd history
Stop everything: bash deploy/dev/setup.sh stop
MSG

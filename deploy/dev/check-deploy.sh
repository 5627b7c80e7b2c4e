#!/usr/bin/env bash
# Checks alertd's deploy recipes without a container engine or a cluster (CI runs it from
# deploy/dev/test.sh):
#
#   1. deploy/install.sh builds and installs alertd into a scratch prefix;
#   2. check-deploy.py checks the Dockerfile (packages resolve with apt-cache, the runtime stage
#      installs what the binary links against), compose.yaml and the Kubernetes manifest;
#   3. systemd-analyze verifies the unit and rates its hardening (exposure 2.0 at most);
#   4. with ALERTD_TEST_DATABASE_URL, the installed alertd, run from outside the checkout, sets up
#      a fresh database as compose.yaml does (init-platform --if-missing, migrate, the login role),
#      the trial's fail-a-sync.sql queues its two alerts, and alertd run as that role answers
#      `alertd health` and stops cleanly on SIGTERM.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for tool in python3 readelf systemd-analyze psql apt-cache; do
  command -v "$tool" >/dev/null || { echo "check-deploy: $tool is missing (deploy/dev/install-deps.sh installs it)" >&2; exit 1; }
done

scratch="$(mktemp -d /tmp/alertd-deploy-check.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"

echo "check-deploy: install.sh into $prefix"
bash deploy/install.sh --prefix "$prefix" --build-path "${ALERTD_INSTALL_BUILD_PATH:-.build}"

python3 deploy/dev/check-deploy.py --binary "$prefix/bin/alertd"

echo "check-deploy: systemd unit"
sed "s#/usr/local/bin/alertd#$prefix/bin/alertd#; s#/usr/local/share#$prefix/share#" deploy/systemd/alertd.service > "$scratch/alertd.service"
systemd-analyze verify "$scratch/alertd.service"
systemd-analyze security --offline=true --threshold=20 "$scratch/alertd.service" | tail -n 1

if [ -z "${ALERTD_TEST_DATABASE_URL:-}" ]; then
  echo "check-deploy: ALERTD_TEST_DATABASE_URL is not set; the installed alertd was not run against a database" >&2
  exit 1
fi

echo "check-deploy: the installed alertd against a fresh database"
admin_url="$ALERTD_TEST_DATABASE_URL"
database=alertd_deploy_check
psql "$admin_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
database_url="${admin_url%/*}/$database"
alertd="$prefix/bin/alertd"
(
  cd /
  export ALERTD_DATABASE_URL="$database_url"
  "$alertd" db init-platform --if-missing
  "$alertd" db migrate
  "$alertd" db init-platform --if-missing | grep -q "nothing to do"
  "$alertd" db verify > /dev/null
  "$alertd" config | grep -qx "templates_dir = $prefix/share/alertd/templates"
)
psql "$database_url" -qX -v ON_ERROR_STOP=1 -v user=alertd_deploy_check -v password=deploy-check-password -f deploy/supabase/alertd-login.sql > /dev/null
alerts="$(psql "$database_url" -qX -v ON_ERROR_STOP=1 -At -F ' ' -f deploy/compose/trial/fail-a-sync.sql | grep -c ' pending$')"
[ "$alerts" -eq 2 ] || { echo "check-deploy: fail-a-sync.sql queued $alerts pending alerts, not 2" >&2; exit 1; }

host_port="$(echo "$admin_url" | sed -E 's#^postgresql://[^@]*@([^/]*)/.*#\1#')"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(
  cd /
  ALERTD_DATABASE_URL="postgresql://alertd_deploy_check:deploy-check-password@$host_port/$database" \
  ALERTD_HTTP_ADDRESS="127.0.0.1:$port" ALERTD_LOG_FORMAT=json \
    exec "$alertd" run > "$scratch/run.log" 2>&1
) &
run_pid=$!
ready=no
for _ in $(seq 1 100); do
  if ALERTD_HTTP_ADDRESS="127.0.0.1:$port" "$alertd" health > /dev/null 2>&1; then ready=yes; break; fi
  sleep 0.1
done
kill -TERM "$run_pid"
status=0
wait "$run_pid" || status=$?
if [ "$ready" != yes ] || [ "$status" -ne 0 ] || grep -q "deploy-check-password\|unable to locate swift-backtrace" "$scratch/run.log"; then
  echo "check-deploy: the installed alertd run: ready=$ready, exit status $status; its log:" >&2
  cat "$scratch/run.log" >&2
  exit 1
fi
psql "$admin_url" -qX -c "DROP DATABASE $database WITH (FORCE)"
echo "check-deploy: all held"

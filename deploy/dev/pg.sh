#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for development and tests: a private socket directory,
# a free loopback port, password (SCRAM) authentication over TCP.
#
#   deploy/dev/pg.sh start   creates (first time) and starts the cluster, prints its URL
#   deploy/dev/pg.sh stop [fast|immediate]
#                            stops it (immediate: no shutdown checkpoint, as after a crash)
#   deploy/dev/pg.sh url     prints the superuser URL of the running cluster
#   deploy/dev/pg.sh destroy stops it and deletes its directory
#
# ALERTD_PG_DIR picks the directory (default: one under /tmp named after this checkout, so that
# the postgres OS user can reach it even when the checkout lives in a private home directory).
# When run as root, the server runs as the postgres OS user, as PostgreSQL requires.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${ALERTD_PG_DIR:-/tmp/alertd-pg-$(printf '%s' "$root" | cksum | cut -d' ' -f1)}"
bindir="$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)"
[ -n "$bindir" ] || { echo "pg.sh: PostgreSQL 15 is not installed (run deploy/dev/install-deps.sh)" >&2; exit 1; }

# Local development credentials for a cluster that only listens on loopback.
password="${ALERTD_PG_PASSWORD:-alertd-dev-password}"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  /usr/bin/python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

port_free() {
  /usr/bin/python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

url() {
  local port
  port="$(cat "$dir/port")"
  echo "postgresql://postgres:${password}@127.0.0.1:${port}/postgres"
}

running() {
  [ -f "$dir/data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; chmod 700 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    local pwfile="$dir/.pwfile"
    ( umask 077; printf '%s\n' "$password" > "$pwfile" )
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pwfile"
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
    mkdir -p "$dir/socket"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/socket"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
max_connections = 600
fsync = on
shared_buffers = 128MB
log_min_messages = warning
CONF
  fi
  if running; then
    url
    return 0
  fi
  # A restart keeps the port, so that clients reconnect to the same URL.
  local port
  if [ -f "$dir/port" ] && port_free "$(cat "$dir/port")"; then
    port="$(cat "$dir/port")"
  else
    port="$(free_port)"
    echo "$port" >"$dir/port"
  fi
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
  url
}

stop() {
  local mode="${1:-fast}"
  case "$mode" in fast|immediate|smart) ;; *) echo "pg.sh: stop mode must be fast or immediate" >&2; exit 2 ;; esac
  if running; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-fast}" ;;
  url) running || { echo "pg.sh: the cluster in $dir is not running" >&2; exit 1; }; url ;;
  destroy) stop; rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop [fast|immediate]|url|destroy" >&2; exit 2 ;;
esac

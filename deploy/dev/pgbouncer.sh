#!/usr/bin/env bash
# A throwaway PgBouncer (Debian's) in front of the cluster deploy/dev/pg.sh runs: what a Supabase
# user meets as the "Session pooler" (session mode) or the "Transaction pooler" (transaction
# mode). Clients log in with SCRAM against the passwords given; PgBouncer reaches the server over
# its private socket.
#
#   deploy/dev/pgbouncer.sh start session|transaction USER:PASSWORD...
#                                  starts it (first time: writes its configuration) and prints
#                                  host:port; a started one prints its address again
#   deploy/dev/pgbouncer.sh stop [MODE]
#                                  stops it (clients are cut off)
#   deploy/dev/pgbouncer.sh restart [MODE]
#                                  stops it and starts it again on the same port
#   deploy/dev/pgbouncer.sh destroy [MODE]
#                                  stops it and deletes its directory
#
# ALERTD_PG_DIR names the cluster (as for pg.sh); ALERTD_PGBOUNCER_DIR the pooler's directory
# (default: one beside the cluster's, per mode).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pg_dir="${ALERTD_PG_DIR:-/tmp/alertd-pg-$(printf '%s' "$root" | cksum | cut -d' ' -f1)}"
command="${1:-}"
mode="${2:-session}"
dir="${ALERTD_PGBOUNCER_DIR:-$pg_dir-pgbouncer-$mode}"
binary="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
[ -x "$binary" ] || { echo "pgbouncer.sh: PgBouncer is not installed (run deploy/dev/install-deps.sh)" >&2; exit 1; }

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

running() {
  [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null
}

address() {
  echo "127.0.0.1:$(cat "$dir/port")"
}

configure() {
  case "$mode" in session|transaction) ;; *) echo "pgbouncer.sh: the mode is session or transaction" >&2; exit 2 ;; esac
  [ -f "$pg_dir/port" ] || { echo "pgbouncer.sh: no cluster in $pg_dir (start it with deploy/dev/pg.sh)" >&2; exit 1; }
  [ "$#" -gt 0 ] || { echo "pgbouncer.sh: give the users as USER:PASSWORD" >&2; exit 2; }
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  free_port >"$dir/port"
  local users=""
  for pair in "$@"; do
    users+="\"${pair%%:*}\" \"${pair#*:}\""$'\n'
  done
  ( umask 077; printf '%s' "$users" >"$dir/userlist.txt" )
  # As Supabase's poolers do: many clients, a small pool per database and user, and a query
  # that finds no server connection waits in the queue (query_wait_timeout, 120 s by default).
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_dir/socket port=$(cat "$pg_dir/port")

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(cat "$dir/port")
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = $mode
max_client_conn = 400
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"/*
  return 0
}

start() {
  if running; then
    address
    return 0
  fi
  [ -f "$dir/pgbouncer.ini" ] || configure "$@"
  as_owner "$binary" -d -q "$dir/pgbouncer.ini" || { tail -20 "$dir/pgbouncer.log" >&2; exit 1; }
  for _ in $(seq 1 100); do
    if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$(cat "$dir/port")" 2>/dev/null; then
      address
      return 0
    fi
    sleep 0.1
  done
  echo "pgbouncer.sh: PgBouncer did not listen on $(address)" >&2
  tail -20 "$dir/pgbouncer.log" >&2 || true
  exit 1
}

stop() {
  running || return 0
  local pid
  pid="$(cat "$dir/pgbouncer.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$command" in
  start) shift 2 || true; start "$@" ;;
  stop) stop ;;
  restart) stop; start ;;
  destroy) stop; rm -rf "$dir" ;;
  *) echo "usage: $0 start session|transaction USER:PASSWORD...|stop|restart|destroy" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A throwaway Postfix (Debian's postfix package) on loopback, configured as a mail relay is in
# production: STARTTLS required (a certificate from a throwaway CA, TLS 1.3 allowed), Cyrus SASL
# AUTH (PLAIN, LOGIN) required before any mail is accepted. What it accepts it relays to an
# aiosmtpd sink (deploy/dev/smtp-sink.py) that writes each message to a JSON log, so that tests
# see what was delivered; Postfix's own log says how each session went.
#
#   deploy/dev/postfix.sh start   configures (first time) and starts it; prints KEY=value lines:
#                                 ALERTD_TEST_POSTFIX_PORT, _USER, _PASSWORD, _CA_FILE, _LOG,
#                                 _DELIVERED (the sink's log)
#   deploy/dev/postfix.sh stop    stops Postfix and the sink
#   deploy/dev/postfix.sh destroy stops them and deletes the directory
#
# These recipients get a fixed answer, for tests of refusals: bounce@example.com 550,
# tempfail@example.com 450.
#
# ALERTD_POSTFIX_DIR picks the directory (default: one under /tmp named after this checkout).
# Postfix needs root: as another user, this script uses sudo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${ALERTD_POSTFIX_DIR:-/tmp/alertd-postfix-$(printf '%s' "$root" | cksum | cut -d' ' -f1)}"
user="alertd"
password="alertd-postfix-test-password"
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

configure() {
  command -v postfix >/dev/null 2>&1 && [ -x /usr/sbin/saslpasswd2 ] \
    || { echo "postfix.sh: Postfix or sasl2-bin is not installed (run deploy/dev/install-deps.sh)" >&2; exit 1; }
  "${as_root[@]}" mkdir -p "$dir/etc/sasl" "$dir/spool" "$dir/data" "$dir/tls"
  "${as_root[@]}" chown "$(id -u)" "$dir" "$dir/etc" "$dir/tls"

  # A throwaway CA and a server certificate for localhost and 127.0.0.1 (a DNS name and an IP SAN).
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=alertd test CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" >/dev/null 2>&1
  printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$dir/tls/ext.cnf"
  openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/tls/ext.cnf" -out "$dir/tls/server.pem" >/dev/null 2>&1
  chmod 644 "$dir/tls/ca.pem" "$dir/tls/server.pem"

  local port sink_port
  port="$(free_port)"
  sink_port="$(free_port)"
  echo "$port" >"$dir/port"
  echo "$sink_port" >"$dir/sink-port"

  cat >"$dir/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.alertd.test
mydomain = alertd.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# What it accepts goes to the sink, in plain SMTP on loopback.
relayhost = [127.0.0.1]:$sink_port
smtp_tls_security_level = none
# A submission relay: STARTTLS, then AUTH, then mail.
smtpd_tls_cert_file = $dir/tls/server.pem
smtpd_tls_key_file = $dir/tls/server.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $dir/etc/sasl
smtpd_sasl_local_domain = alertd.test
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access inline:{ {bounce@example.com=550 5.1.1 No such user here}, {tempfail@example.com=450 4.2.1 Mailbox busy, try again later} }, permit_sasl_authenticated, reject
CONF
  cat >"$dir/etc/master.cf" <<CONF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
  cp /etc/postfix/dynamicmaps.cf "$dir/etc/"
  cat >"$dir/etc/sasl/smtpd.conf" <<CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $dir/etc/sasl/sasldb2
CONF
  printf '%s' "$password" | "${as_root[@]}" /usr/sbin/saslpasswd2 -p -c -f "$dir/etc/sasl/sasldb2" -u alertd.test "$user"
  "${as_root[@]}" chown root:postfix "$dir/etc/sasl/sasldb2"
  "${as_root[@]}" chmod 640 "$dir/etc/sasl/sasldb2"
  "${as_root[@]}" chown -R root "$dir/etc"
  "${as_root[@]}" chmod 755 "$dir" "$dir/etc" "$dir/etc/sasl"
  "${as_root[@]}" chown postfix "$dir/data"
  "${as_root[@]}" chmod 700 "$dir/data"
  touch "$dir/configured"
}

running() { "${as_root[@]}" postfix -c "$dir/etc" status >/dev/null 2>&1; }

# The postfix command says why it fails on a terminal or to syslog only: give it a terminal.
postfix_command() { "${as_root[@]}" script -qec "postfix -c '$dir/etc' $1" /dev/null; }

sink_running() { [ -f "$dir/sink.pid" ] && kill -0 "$(cat "$dir/sink.pid")" 2>/dev/null; }

start() {
  [ -f "$dir/configured" ] || configure
  if ! sink_running; then
    # Its port (which Postfix relays to) may still be held for a moment after a stop: try again.
    for _ in $(seq 1 40); do
      setsid /usr/bin/python3 "$here/smtp-sink.py" --port "$(cat "$dir/sink-port")" --log "$dir/delivered.jsonl" \
        >"$dir/sink.out" 2>&1 </dev/null &
      echo $! >"$dir/sink.pid"
      for _ in $(seq 1 100); do
        grep -q '^listening on' "$dir/sink.out" && break
        sink_running || break
        sleep 0.1
      done
      grep -q '^listening on' "$dir/sink.out" && break
      kill "$(cat "$dir/sink.pid")" 2>/dev/null || true
      sleep 0.25
    done
    grep -q '^listening on' "$dir/sink.out" || { cat "$dir/sink.out" >&2; echo "postfix.sh: the relay's sink did not start" >&2; exit 1; }
  fi
  if ! running; then
    postfix_command check >"$dir/check.out" 2>&1 || { cat "$dir/check.out" >&2; exit 1; }
    postfix_command start >"$dir/start.out" 2>&1 || { cat "$dir/start.out" >&2; tail -20 "$dir/maillog" >&2 2>/dev/null; exit 1; }
  fi
  # Ready when it greets.
  local port
  port="$(cat "$dir/port")"
  for _ in $(seq 1 100); do
    if /usr/bin/python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
sys.exit(0 if s.recv(100).startswith(b"220") else 1)
PY
    sleep 0.1
  done
  echo "ALERTD_TEST_POSTFIX_PORT=$port"
  echo "ALERTD_TEST_POSTFIX_USER=$user"
  echo "ALERTD_TEST_POSTFIX_PASSWORD=$password"
  echo "ALERTD_TEST_POSTFIX_CA_FILE=$dir/tls/ca.pem"
  echo "ALERTD_TEST_POSTFIX_LOG=$dir/maillog"
  echo "ALERTD_TEST_POSTFIX_DELIVERED=$dir/delivered.jsonl"
}

stop() {
  if [ -f "$dir/configured" ] && running; then "${as_root[@]}" postfix -c "$dir/etc" stop >/dev/null 2>&1 || true; fi
  if sink_running; then
    local pid
    pid="$(cat "$dir/sink.pid")"
    kill "$pid" 2>/dev/null || true
    # Gone before this returns, so that a start right after finds its port free.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/sink.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  destroy) stop; "${as_root[@]}" rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop|destroy" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs alertd's whole test suite on a fresh Debian 12 machine with the Swift toolchain:
# installs the packages it needs, starts a throwaway PostgreSQL 15 cluster on loopback,
# builds, runs every test, and removes the cluster afterwards.
#
# Integration tests fail (never skip) when a server they need cannot start.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bash deploy/dev/install-deps.sh

# A cluster of its own, so that a run never meets a development cluster's leftovers.
export ALERTD_PG_DIR="${ALERTD_TEST_PG_DIR:-$(mktemp -d /tmp/alertd-test-pg.XXXXXX)}"
# Postfix as a mail relay is in production: STARTTLS and SASL AUTH required.
export ALERTD_POSTFIX_DIR="${ALERTD_TEST_POSTFIX_DIR:-$(mktemp -d /tmp/alertd-test-postfix.XXXXXX)}"
cleanup() {
  bash deploy/dev/pg.sh destroy || true
  bash deploy/dev/postfix.sh destroy || true
}
trap cleanup EXIT
echo "test.sh: starting PostgreSQL in $ALERTD_PG_DIR"
ALERTD_TEST_DATABASE_URL="$(bash deploy/dev/pg.sh start)"
export ALERTD_TEST_DATABASE_URL
echo "test.sh: starting Postfix in $ALERTD_POSTFIX_DIR"
postfix_settings="$(bash deploy/dev/postfix.sh start)"
while IFS='=' read -r name value; do export "$name=$value"; done <<<"$postfix_settings"

echo "test.sh: building"
swift build --build-tests

echo "test.sh: layers (no cycle between AlertdKit's folders)"
python3 deploy/dev/check-layers.py >/dev/null || python3 deploy/dev/check-layers.py

echo "test.sh: monitoring rules (promtool: the rules load, and their unit tests pass)"
promtool check rules deploy/monitoring/alertd-rules.yml
promtool test rules deploy/monitoring/alertd-rules.test.yml

echo "test.sh: testing"
# The suite takes a minute or two. A test binary that crashes can leave `swift test` waiting on
# it (helper processes it started keep its output open): after 20 minutes, fail instead.
timeout --kill-after=30s 20m swift test --skip-build "$@" || {
  status=$?
  [ "$status" -ne 124 ] || echo "test.sh: swift test did not finish within 20 minutes" >&2
  exit "$status"
}

# The fault suite runs real alertd processes through crashes, restarts and outages on a cluster
# of its own (docs/faults.md). ALERTD_FAULT_ARGS passes it options (default: every scenario).
if [ "$#" -eq 0 ]; then
  # The deploy recipes, checked statically, and alertd as deploy/install.sh installs it.
  echo "test.sh: deploy recipes"
  bash deploy/dev/check-deploy.sh
  # The receiver guide's verifiers (Python, Node.js, Swift) against a webhook alertd signs, and
  # the documented scripts the tests do not run themselves.
  echo "test.sh: documented code and scripts"
  bash deploy/dev/check-docs.sh
  echo "test.sh: fault suite"
  # Shorter than a full run (docs/faults.md): the long outage lasts 90 s (6 times what one
  # alert's retries would survive alone), the outage 20 s, the backlog 50,000 alerts.
  # shellcheck disable=SC2086
  bash deploy/dev/faults.sh ${ALERTD_FAULT_ARGS:---long-outage 90 --outage 20 --backlog 50000}
  echo "test.sh: fault suite, email through Postfix"
  # Postfix's part is how the real relay behaves through kills, an outage and two instances, not
  # volume (the run above has it): 1,000 events a scenario, about 80 s less than 2,000.
  bash deploy/dev/faults.sh --smtp postfix --scenario kill --scenario outage --scenario two-instances --outage 20 --events 1000
fi

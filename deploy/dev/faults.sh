#!/usr/bin/env bash
# alertd's fault suite: real alertd processes (as their least-privilege role) through SIGKILLs,
# PostgreSQL restarts, a frozen LISTEN connection, an SMTP and webhook outage, a receiver that
# never answers, several instances, and a 100,000-alert backlog. Each scenario drives thousands
# of sync-status changes and then counts, from the database and from what the receivers got,
# alerts lost, alerts delivered twice, alerts overdue, peak RSS and peak open files.
#
#   bash deploy/dev/faults.sh                         every scenario, release build
#   bash deploy/dev/faults.sh --scenario kill         one scenario (repeatable)
#   bash deploy/dev/faults.sh --events 5000 --outage 60 --backlog 100000 --json faults.json
#
# It starts (and removes) a PostgreSQL cluster of its own. Exit status 0 when every scenario held.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bash deploy/dev/install-deps.sh
configuration="${ALERTD_FAULTS_BUILD:-release}"
echo "faults.sh: building ($configuration)"
flags=(-c "$configuration")
[ "$configuration" != release ] || flags=("${release[@]}")
if [ "$configuration" = release ]; then
  build_release --product alertd
else
  swift build "${flags[@]}" --product alertd
fi
swift build "${flags[@]}" --product alertd-faults
bin="$(swift build "${flags[@]}" --show-bin-path)"
ALERTD_BINARY="$bin/alertd" exec "$bin/alertd-faults" "$@"

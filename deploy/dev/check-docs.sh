#!/usr/bin/env bash
# Runs the code docs/webhooks.md shows receivers (the Python, Node.js and Swift verifiers), as
# written there, against a webhook alertd really signs: alertd --test-notification --webhook-url
# posts to deploy/dev/webhook-receiver.py, and each verifier must accept that request and refuse
# it with a tampered body, a wrong secret or a stale timestamp. CI runs it from deploy/dev/test.sh.
#
#   bash deploy/dev/check-docs.sh          (after swift build; ALERTD_BINARY picks another alertd)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

alertd="${ALERTD_BINARY:-$root/.build/debug/alertd}"
[ -x "$alertd" ] || { echo "check-docs: no alertd at $alertd; run swift build first" >&2; exit 1; }
command -v node >/dev/null || { echo "check-docs: node is missing (deploy/dev/install-deps.sh installs nodejs)" >&2; exit 1; }

scratch="$(mktemp -d /tmp/alertd-docs-check.XXXXXX)"
receiver_pid=""
setup_started=0
cleanup() {
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
  [ "$setup_started" = 1 ] && { bash deploy/dev/setup.sh stop >/dev/null 2>&1 || true; }
  rm -rf "$scratch"
}
trap cleanup EXIT
harness="$root/deploy/dev/doc-harness"
guide="$root/docs/webhooks.md"
secret="whsec_$(head -c 32 /dev/urandom | base64)"

# A real signed webhook, through alertd's production path.
/usr/bin/python3 deploy/dev/webhook-receiver.py --log "$scratch/requests.jsonl" > "$scratch/receiver.out" &
receiver_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$scratch/receiver.out" 2>/dev/null && break; sleep 0.05; done
port="$(sed -n 's/^listening on //p' "$scratch/receiver.out")"
[ -n "$port" ] || { echo "check-docs: the webhook receiver did not start" >&2; exit 1; }
env -u ALERTD_DATABASE_URL ALERTD_WEBHOOK_SECRET="$secret" ALERTD_WEBHOOK_ALLOW=127.0.0.1 \
  "$alertd" --test-notification --webhook-url "http://127.0.0.1:$port/hooks/alertd"
head -n 1 "$scratch/requests.jsonl" > "$scratch/request.json"
[ -s "$scratch/request.json" ] || { echo "check-docs: the receiver got no webhook" >&2; exit 1; }

expected="genuine=true tampered=false wrong_secret=false stale=false"
check() {
  local language="$1" answer="$2"
  if [ "$answer" != "$expected" ]; then
    echo "check-docs: the $language verifier of docs/webhooks.md answered '$answer', not '$expected'" >&2
    exit 1
  fi
  echo "check-docs: $language verifier: $answer"
}

python3 "$harness/extract.py" "$guide" python > "$scratch/verify.py"
cat "$harness/harness.py" >> "$scratch/verify.py"
check Python "$(/usr/bin/python3 "$scratch/verify.py" "$scratch/request.json" "$secret")"

python3 "$harness/extract.py" "$guide" javascript > "$scratch/verify.js"
check Node.js "$(node "$harness/harness.js" "$scratch/verify.js" "$scratch/request.json" "$secret")"

package="$scratch/swift"
mkdir -p "$package/Sources/verify"
cp "$harness/Package.swift" "$package/"
python3 "$harness/extract.py" "$guide" swift > "$package/Sources/verify/verify.swift"
cp "$harness/harness.swift" "$package/Sources/verify/main.swift"
echo "check-docs: building the Swift verifier (swift-crypto)"
swift build --package-path "$package" --build-path "${ALERTD_DOCS_BUILD_PATH:-$root/.build-docs}" > "$scratch/swift-build.log" 2>&1 \
  || { cat "$scratch/swift-build.log" >&2; exit 1; }
check Swift "$("${ALERTD_DOCS_BUILD_PATH:-$root/.build-docs}/debug/verify" "$scratch/request.json" "$secret")"

# The README's set-up command and the development guide's measurement, as written (on the
# cluster ALERTD_PG_DIR names: test.sh's own when it calls this script).
# setup.sh leaves alertd, an SMTP sink and a webhook receiver running, as a reader would have
# them; they are stopped at the end (with the cluster, which test.sh destroys anyway).
echo "check-docs: bash deploy/dev/setup.sh"
setup_started=1
# What the first run must show: the email and the verified webhook that arrived, and the audit.
expect_first_run() {
  local log="$1"
  for wanted in "Subject: [alertd] Sync failed: Paycom (demo)" "HTTP 401 from Paycom: token expired" \
                "signature verified" '"type": "sync.failure"' "Paycom (demo)  failure  email    sent" \
                "Paycom (demo)  failure  webhook  sent" "bash deploy/dev/setup.sh fail" "bash deploy/dev/setup.sh stop"; do
    grep -qF -- "$wanted" "$log" || { cat "$log" >&2; echo "check-docs: $2 did not print: $wanted" >&2; exit 1; }
  done
}
bash deploy/dev/setup.sh > "$scratch/setup.log" 2>&1 || { cat "$scratch/setup.log" >&2; exit 1; }
expect_first_run "$scratch/setup.log" "bash deploy/dev/setup.sh"
expect_in() {
  local log="$1" what="$2"; shift 2
  for wanted in "$@"; do
    grep -qF -- "$wanted" "$log" || { cat "$log" >&2; echo "check-docs: $what did not print: $wanted" >&2; exit 1; }
  done
}
echo "check-docs: bash deploy/dev/setup.sh fail (a repeat, suppressed), recover, and setup.sh again (it reuses what runs)"
bash deploy/dev/setup.sh fail > "$scratch/setup-fail.log" 2>&1 || { cat "$scratch/setup-fail.log" >&2; exit 1; }
expect_in "$scratch/setup-fail.log" "bash deploy/dev/setup.sh fail" "this repeat is recorded suppressed" \
  "Paycom (demo)  failure  email    suppressed" "bash deploy/dev/setup.sh recover"
bash deploy/dev/setup.sh recover > "$scratch/setup-recover.log" 2>&1 || { cat "$scratch/setup-recover.log" >&2; exit 1; }
expect_in "$scratch/setup-recover.log" "bash deploy/dev/setup.sh recover" "Subject: [alertd] Sync recovered: Paycom (demo)" \
  "Failed runs:   2" '"type": "sync.recovered"' "Paycom (demo)  recovery  email    sent"
bash deploy/dev/setup.sh > "$scratch/setup-again.log" 2>&1 || { cat "$scratch/setup-again.log" >&2; exit 1; }
expect_first_run "$scratch/setup-again.log" "bash deploy/dev/setup.sh (again)"
grep -q "reusing the smtp-sink" "$scratch/setup-again.log"
echo "check-docs: /usr/bin/python3 deploy/dev/measure-webhooks.py (a short run)"
/usr/bin/python3 deploy/dev/measure-webhooks.py --alertd "$(swift build "${release[@]}" --show-bin-path)/alertd" --trickle 20 --backlog 200

# docs/benchmarks.md: the benchmark, every phase with small numbers (--quick: it works, and every
# alert is sent), and its plot. Its figures come from full runs on an idle machine, A/B in one run
# (docs/benchmarks.md); CI's machine is shared and its full run cost two and a half minutes.
echo "check-docs: alertd bench --quick"
build_release --product alertd
(cd "$scratch" && "$(swift build --package-path "$root" "${release[@]}" --show-bin-path)/alertd" bench --quick --json bench.json)
python3 deploy/dev/bench-plot.py "$scratch/bench.json" > "$scratch/bench.svg"
# The same-run A/B of two commits builds each (minutes) and runs full benches (many minutes):
# here only that it starts and says how it is used.
bash deploy/dev/ab.sh --help | grep -q -- "--pairs N"
grep -q "</svg>" "$scratch/bench.svg"
echo "check-docs: all held"

#!/usr/bin/env bash
# A same-run A/B of two alertd commits: builds each one's release in a folder of its own, runs
# each build's own `alertd bench` in interleaved pairs (old, new, old, new, ...) on this machine,
# and prints the medians and the ratios new / old (docs/benchmarks.md#comparing-two-commits).
#
#   bash deploy/dev/ab.sh OLD [NEW]                       NEW: the working tree (default)
#   bash deploy/dev/ab.sh 689895b HEAD --pairs 3 --only throughput --only backlog
#   bash deploy/dev/ab.sh 689895b --pairs 5 --only latency --out /tmp/ab-latency
#
# Options after the commits go to both benches (`--only PHASE`, `--rate N`, ...), except:
#   --pairs N     pairs of runs (default 3: a median needs three)
#   --out DIR     where the JSON of every run and the summary go (default: a new folder in /tmp)
#   --statements  pg_stat_statements in both benches' clusters (PostgreSQL's programs wrapped, so
#                 that a build whose bench lacks --statements is measured alike): each run's
#                 statements of alertd's role, in DIR/SIDE-N.statements.tsv, and per statement
#                 the server's µs per delivery of the backlog in the summary (use --only backlog)
#
# Commits other than the working tree are checked out with `git worktree` under
# $ALERTD_AB_DIR (default .build-ab/, ignored by git) and built there once; a later run reuses
# the build. Each bench starts its own PostgreSQL, receiver and SMTP sink, as `alertd bench`
# always does, so the two builds meet the same harness on the same machine minutes apart.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
root="$(pwd)"

usage() { sed -n '2,17p' "$0"; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
old_ref="$1"; shift
new_ref=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then new_ref="$1"; shift; fi

pairs=3
out=""
statements=no
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --statements) statements=yes; shift ;;
    *) bench_args+=("$1"); shift ;;
  esac
done
[ "$pairs" -ge 1 ] 2>/dev/null || { echo "ab.sh: --pairs takes a whole number, not '$pairs'" >&2; exit 2; }
[ ${#bench_args[@]} -gt 0 ] || bench_args=(--only throughput --only backlog)
out="${out:-$(mktemp -d /tmp/alertd-ab.XXXXXX)}"
mkdir -p "$out"
ab_dir="${ALERTD_AB_DIR:-$root/.build-ab}"
chmod 0777 "$out"

# With --statements: PostgreSQL 15's programs, pg_ctl wrapped so that the server starts with
# pg_stat_statements and, before it stops, writes what alertd's role ran to $ALERTD_AB_STATEMENTS.
pg_bin=/usr/lib/postgresql/15/bin
if [ "$statements" = yes ]; then
  wrapped="$out/pg-bin"
  mkdir -p "$wrapped"
  for program in "$pg_bin"/*; do ln -sf "$program" "$wrapped/"; done
  rm "$wrapped/pg_ctl"
  cat > "$wrapped/pg_ctl" <<'WRAPPER'
#!/usr/bin/env bash
# pg_ctl with pg_stat_statements: deploy/dev/ab.sh --statements.
set -euo pipefail
pg_bin=/usr/lib/postgresql/15/bin
data=""; action=""; args=("$@")
while [ $# -gt 0 ]; do
  case "$1" in -D) data="$2"; shift 2 ;; start|stop) action="$1"; shift ;; *) shift ;; esac
done
if [ "$action" = start ]; then
  exec "$pg_bin/pg_ctl" "${args[@]}" -o "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on -c pg_stat_statements.max=1000"
fi
if [ "$action" = stop ] && [ -n "${ALERTD_AB_STATEMENTS:-}" ] && [ -f "$data/postmaster.pid" ]; then
  port="$(sed -n 4p "$data/postmaster.pid")"; socket="$(sed -n 5p "$data/postmaster.pid")"
  "$pg_bin/psql" -X -q -h "$socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1     -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"     -c "COPY (SELECT s.calls, s.rows, round(s.total_exec_time::numeric, 2), round(s.total_plan_time::numeric, 2), regexp_replace(s.query, '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname <> 'postgres' ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT 15) TO STDOUT"     > "$ALERTD_AB_STATEMENTS" || true
fi
exec "$pg_bin/pg_ctl" "${args[@]}"
WRAPPER
  chmod 0755 "$wrapped/pg_ctl"
  bench_args+=(--pg-bin "$wrapped")
fi

# The folder holding commit $1's sources: the working tree for "", a worktree otherwise.
checkout() {
  local ref="$1"
  if [ -z "$ref" ]; then echo "$root"; return; fi
  local sha
  sha="$(git rev-parse --verify --quiet "$ref^{commit}")" || { echo "ab.sh: no commit '$ref' in this repository" >&2; exit 2; }
  local dir="$ab_dir/${sha:0:12}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$ab_dir"
    git worktree add --detach --quiet "$dir" "$sha"
  fi
  echo "$dir"
}

# Builds the release in folder $1 and prints the command that runs its bench.
build() {
  local dir="$1"
  echo "ab.sh: building the release in $dir" >&2
  # Both builds alike: the release as deploy/install.sh makes it now (common.sh's flags).
  (cd "$dir" && build_release --product alertd >&2)
  local bin
  bin="$(cd "$dir" && swift build "${release[@]}" --show-bin-path)"
  # The bench is its own executable from the commit that made it one; before, `alertd bench`.
  if grep -q '"alertd-bench"' "$dir/Package.swift"; then
    (cd "$dir" && swift build "${release[@]}" --product alertd-bench >&2)
    echo "$bin/alertd-bench --alertd $bin/alertd"
  else
    echo "$bin/alertd bench"
  fi
}

old_dir="$(checkout "$old_ref")"
new_dir="$(checkout "$new_ref")"
old_label="$(cd "$old_dir" && git rev-parse --short HEAD)"
new_label="$(cd "$new_dir" && git rev-parse --short HEAD)$([ -z "$new_ref" ] && [ -n "$(git status --porcelain --untracked-files=no)" ] && echo '+changes' || true)"
old_bench="$(build "$old_dir")"
new_bench="$(build "$new_dir")"

echo "ab.sh: $pairs pairs, $old_label then $new_label, bench ${bench_args[*]}; results in $out"
for pair in $(seq 1 "$pairs"); do
  for side in old new; do
    if [ "$side" = old ]; then dir="$old_dir"; bench="$old_bench"; label="$old_label"; else dir="$new_dir"; bench="$new_bench"; label="$new_label"; fi
    echo "ab.sh: pair $pair of $pairs: $label"
    # Each bench from its own folder: the alertd it starts finds that commit's SQL and templates.
    # shellcheck disable=SC2086
    statements_file=""
    if [ "$statements" = yes ]; then
      statements_file="$out/$side-$pair.statements.tsv"
      : > "$statements_file"
      chmod 0666 "$statements_file"
    fi
    (cd "$dir" && ALERTD_AB_STATEMENTS="$statements_file" $bench "${bench_args[@]}" --json "$out/$side-$pair.json" > "$out/$side-$pair.log" 2>&1) || {
      echo "ab.sh: the bench of $label failed; its output ends:" >&2
      tail -20 "$out/$side-$pair.log" >&2
      exit 1
    }
  done
done

python3 - "$out" "$old_label" "$new_label" "$pairs" "$statements" <<'EOF' | tee "$out/summary.md"
import json, os, statistics, sys
out, old_label, new_label, pairs, statements = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "yes"
runs = {side: [json.load(open(f"{out}/{side}-{n}.json")) for n in range(1, pairs + 1)] for side in ("old", "new")}
figures = [
    ("webhooks sustained /s", "webhook_deliveries_per_s"),
    ("email sustained /s", "email_messages_per_s"),
    ("mix sustained /s", "mix_deliveries_per_s"),
    ("backlog drained, s", "backlog_drain_s"),
    ("alertd CPU s per 1,000 deliveries", "cpu_s_per_1000_deliveries"),
    ("webhook latency p50, ms", "webhook_latency_ms.p50"),
    ("webhook latency p99, ms", "webhook_latency_ms.p99"),
    ("email latency p50, ms", "email_latency_ms.p50"),
    ("email latency p99, ms", "email_latency_ms.p99"),
    ("trigger against the constant insert", "trigger_ratio_against_constant_insert"),
    ("harness alone: receiver /s", "harness.receiver_requests_per_s"),
    ("harness alone: SMTP sink /s", "harness.smtp_sink_messages_per_s"),
]
def value(run, key):
    for part in key.split("."):
        run = run.get(part) if isinstance(run, dict) else None
    return run if isinstance(run, (int, float)) and run else None
print(f"| figure | {old_label} runs | {new_label} runs | {old_label} median | {new_label} median | new / old |")
print("|---|---|---|---|---|---|")
for name, key in figures:
    old = [value(r, key) for r in runs["old"]]
    new = [value(r, key) for r in runs["new"]]
    if not any(old) and not any(new):
        continue
    def show(values):
        return " · ".join("–" if v is None else f"{v:g}" for v in values)
    old_median = statistics.median([v for v in old if v is not None]) if any(old) else None
    new_median = statistics.median([v for v in new if v is not None]) if any(new) else None
    ratio = f"{new_median / old_median:.2f}" if old_median and new_median else "–"
    print(f"| {name} | {show(old)} | {show(new)} | {'–' if old_median is None else old_median} | {'–' if new_median is None else new_median} | {ratio} |")
if statements:
    # Per statement (its first 100 characters), the server's time per delivery of the backlog,
    # planning and execution: each build's median over its runs.
    for side, label in (("old", old_label), ("new", new_label)):
        per = {}
        for n in range(1, pairs + 1):
            deliveries = runs[side][n - 1].get("backlog_alerts") or 0
            path = f"{out}/{side}-{n}.statements.tsv"
            if not deliveries or not os.path.getsize(path):
                continue
            for line in open(path):
                calls, rows, exec_ms, plan_ms, query = line.rstrip("\n").split("\t", 4)
                per.setdefault(query[:100], []).append(((float(exec_ms) + float(plan_ms)) * 1000 / deliveries, float(plan_ms) * 1000 / deliveries, int(calls)))
        print(f"\n{label}: PostgreSQL µs per backlog delivery by statement of alertd's role (median of the runs; of it planning; calls)\n")
        print("| µs / delivery | plan µs | calls | statement |")
        print("|---|---|---|---|")
        ranked = sorted(per.items(), key=lambda item: -statistics.median(v[0] for v in item[1]))
        for query, values in ranked[:10]:
            print(f"| {statistics.median(v[0] for v in values):.1f} | {statistics.median(v[1] for v in values):.1f} | {int(statistics.median(v[2] for v in values))} | `{query}` |")
EOF

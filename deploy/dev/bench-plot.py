#!/usr/bin/python3
"""Draws alertd bench's JSON as an SVG: each figure against its target, and the latency
percentiles. Standard library only.

  python3 deploy/dev/bench-plot.py bench.json > docs/benchmarks.svg
"""
import json
import sys
from xml.sax.saxutils import escape

WIDTH, ROW, LEFT, BAR = 760, 30, 300, 380


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = json.load(open(sys.argv[1], encoding="utf-8"))
    drain = results.get("backlog_100k_drain_s") or results.get("backlog_drain_s") or 0
    # (label, measured, target, unit, higher is better)
    targets = [
        ("webhook deliveries per second", results["webhook_deliveries_per_s"], 3000, "/s", True),
        ("email messages per second", results["email_messages_per_s"], 1000, "/s", True),
        (f"backlog of {results.get('backlog_alerts', 0):,} drained", drain, 40, " s", False),
        ("writer throughput, trigger / none", results["trigger_writer_throughput_ratio"], 0.75, "", True),
        ("webhook latency p50 at %d/s" % results.get("offered_rate_per_s", 0), results["webhook_latency_ms"]["p50"], 5, " ms", False),
        ("webhook latency p99", results["webhook_latency_ms"]["p99"], 25, " ms", False),
        ("RSS idle", results["rss_idle_mib"], 64, " MiB", False),
        ("RSS peak", results["rss_peak_mib"], 200, " MiB", False),
    ]
    latencies = [(f"{channel} {p}", results[f"{channel}_latency_ms"][p]) for channel in ("webhook", "email") for p in ("p50", "p90", "p99", "max")]

    out = []
    y = 40
    out.append(f'<text x="10" y="24" font-size="16" font-weight="bold">alertd bench: each figure as a share of its target (the line is the target)</text>')
    for label, value, target, unit, higher in targets:
        share = (value / target) if higher else (target / value if value else 0)
        length = min(share, 2.0) / 2.0 * BAR
        colour = "#2e7d32" if share >= 1 else "#c62828"
        out.append(f'<text x="10" y="{y + 18}" font-size="13">{escape(label)}</text>')
        out.append(f'<rect x="{LEFT}" y="{y + 5}" width="{length:.1f}" height="18" fill="{colour}"/>')
        out.append(f'<line x1="{LEFT + BAR / 2}" y1="{y}" x2="{LEFT + BAR / 2}" y2="{y + ROW}" stroke="#000" stroke-dasharray="3,2"/>')
        out.append(f'<text x="{LEFT + BAR + 8}" y="{y + 18}" font-size="12">{value:g}{unit} (target {"≥" if higher else "≤"} {target:g}{unit})</text>')
        y += ROW
    y += 20
    out.append(f'<text x="10" y="{y + 14}" font-size="16" font-weight="bold">commit-to-receipt latency, ms (log scale, 0.1 to 1000)</text>')
    y += 24
    import math
    for label, value in latencies:
        length = max(0.0, min(1.0, (math.log10(max(value, 0.1)) + 1) / 4)) * BAR
        out.append(f'<text x="10" y="{y + 18}" font-size="13">{escape(label)}</text>')
        out.append(f'<rect x="{LEFT}" y="{y + 5}" width="{length:.1f}" height="18" fill="#1565c0"/>')
        out.append(f'<text x="{LEFT + length + 8:.1f}" y="{y + 18}" font-size="12">{value:g} ms</text>')
        y += ROW
    height = y + 20
    print(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH + 140}" height="{height}" font-family="sans-serif">')
    print(f'<rect width="100%" height="100%" fill="#fff"/>')
    print("\n".join(out))
    print("</svg>")


if __name__ == "__main__":
    main()

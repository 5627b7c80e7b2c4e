#!/usr/bin/python3
"""Draws alertd's dashboard (deploy/monitoring/alertd-dashboard.json) as an SVG picture from its
panels' series, as MonitoringPackTests records them through a real Prometheus:

  ALERTD_DASHBOARD_DATA=/tmp/dashboard.json swift test --filter MonitoringPackTests
  python3 deploy/dev/dashboard-plot.py /tmp/dashboard.json > docs/monitoring-dashboard.svg

Each panel a small line chart of its series over the run, with its title, its scale and its
legend; no library needed.
"""
import json
import sys
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
WIDTH, HEIGHT, COLUMNS = 380, 210, 3


def scale_label(value, unit):
    if unit == "s":
        return f"{value * 1000:.0f} ms" if 0 < value < 1 else f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    if unit == "ops":
        return f"{value:.1f}/s"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def panel(data, x0, y0, start, end):
    out = [f'<g transform="translate({x0},{y0})">',
           f'<rect width="{WIDTH - 10}" height="{HEIGHT - 10}" fill="#181b1f" rx="4"/>',
           f'<text x="10" y="18" fill="#d8d9da" font-size="12" font-weight="bold">{escape(data["title"])}</text>']
    left, top, right, bottom = 52, 28, WIDTH - 20, HEIGHT - 58
    series = []
    for s in data["series"]:
        points = [(float(t), float(v)) for t, v in s["values"] if v not in ("NaN", "+Inf", "-Inf")]
        if points:
            series.append((s["legend"], points))
    top_value = max([v for _, points in series for _, v in points] + [0])
    top_value = top_value * 1.1 if top_value > 0 else 1
    for fraction in (0, 0.5, 1):
        y = bottom - fraction * (bottom - top)
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2c3235"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" fill="#8e8e8e" font-size="9" text-anchor="end">{escape(scale_label(top_value * fraction, data["unit"]))}</text>')
    span = max(end - start, 1)
    for index, (legend, points) in enumerate(series[:8]):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{left + (t - start) / span * (right - left):.1f},{bottom - v / top_value * (bottom - top):.1f}" for t, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        lx = 10 + (index % 3) * 120
        ly = bottom + 22 + (index // 3) * 13
        out.append(f'<rect x="{lx}" y="{ly - 7}" width="8" height="8" fill="{colour}"/>')
        out.append(f'<text x="{lx + 12}" y="{ly}" fill="#ccccdc" font-size="9">{escape(legend[:20])}</text>')
    if not series:
        out.append(f'<text x="{WIDTH / 2 - 30}" y="{(top + bottom) / 2}" fill="#8e8e8e" font-size="11">No data</text>')
    out.append(f'<text x="{left}" y="{bottom + 11}" fill="#8e8e8e" font-size="9">−{span / 60:.0f} min</text>')
    out.append(f'<text x="{right}" y="{bottom + 11}" fill="#8e8e8e" font-size="9" text-anchor="end">now</text>')
    out.append("</g>")
    return out


def main():
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    panels = data["panels"]
    rows = (len(panels) + COLUMNS - 1) // COLUMNS
    width, height = COLUMNS * WIDTH + 10, rows * HEIGHT + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="#111217"/>',
           '<text x="10" y="24" fill="#d8d9da" font-size="16" font-weight="bold">alertd</text>']
    for index, item in enumerate(panels):
        out += panel(item, 10 + (index % COLUMNS) * WIDTH, 36 + (index // COLUMNS) * HEIGHT, data["start"], data["end"])
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()

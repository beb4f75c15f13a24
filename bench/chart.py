#!/usr/bin/env python3
"""Draws bench/load.sh's figures as an SVG, with the standard library only:
for each target, the server's CPU time per request, Tessera beside the
Django reference, on a log scale (one panel per database kind), with
requests per second written at the end of each bar.

    python3 bench/chart.py bench/results-sqlite.csv bench/results-postgres.csv --out bench/cost.svg
"""

import argparse
import csv
import math
import os
from xml.sax.saxutils import escape

ORDER = ["healthz", "fwd_jwt", "stateless", "verify", "me_jwt", "me_token",
         "refresh", "refresh_rot", "refresh_chain", "login"]
LABELS = {
    "healthz": "healthz / ping",
    "fwd_jwt": "forward auth (JWT)",
    "stateless": "whoami-stateless (JWT)",
    "verify": "verify",
    "me_jwt": "users/me (JWT)",
    "me_token": "users/me (Token)",
    "refresh": "refresh",
    "refresh_rot": "refresh, rotation",
    "refresh_chain": "refresh, rotation + reuse det.",
    "login": "login (password hash)",
}
COLORS = {"tessera": "#2b6cb0", "django": "#c05621"}


def load(paths):
    panels = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                panels.setdefault(row["db"], {}).setdefault(row["key"], {})[row["system"]] = (
                    float(row["cpu_us_per_req"]), float(row["req_per_s"]))
    return panels


def svg(panels):
    left, bar_h, gap, width = 190, 11, 8, 860
    plot_w = width - left - 150
    lo, hi = 1.0, 1e6  # µs, log scale
    x = lambda us: left + plot_w * (math.log10(max(us, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    out, y = [], 40
    out.append(f'<text x="{left}" y="22" font-size="15" font-weight="bold">CPU time per request, µs (log scale); req/s at the end of each bar</text>')
    for db in ("sqlite", "postgres"):
        rows = panels.get(db)
        if not rows:
            continue
        out.append(f'<text x="10" y="{y + 14}" font-size="14" font-weight="bold">{escape(db)}</text>')
        y += 24
        top = y
        for key in ORDER:
            if key not in rows:
                continue
            out.append(f'<text x="{left - 8}" y="{y + bar_h + 4}" font-size="12" text-anchor="end">{escape(LABELS[key])}</text>')
            for system in ("tessera", "django"):
                if system not in rows[key]:
                    y += bar_h + 1
                    continue
                us, rps = rows[key][system]
                w = x(us) - left
                out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLORS[system]}"/>')
                out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 2}" font-size="10">{us:,.0f} µs · {rps:,.0f}/s</text>')
                y += bar_h + 1
            y += gap
        for us in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000):
            gx = x(us)
            out.append(f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{y}" stroke="#ccc" stroke-width="0.5"/>')
            label = f"{us:,}" if us < 1_000_000 else "1 s"
            out.append(f'<text x="{gx:.1f}" y="{y + 12}" font-size="10" text-anchor="middle" fill="#555">{label}</text>')
        y += 30
    legend = "".join(
        f'<rect x="{left + i * 130}" y="{y}" width="12" height="12" fill="{COLORS[s]}"/>'
        f'<text x="{left + i * 130 + 16}" y="{y + 10}" font-size="12">{name}</text>'
        for i, (s, name) in enumerate((("tessera", "Tessera"), ("django", "Django reference"))))
    out.append(legend)
    height = y + 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
            f'<rect width="100%" height="100%" fill="white"/>' + "".join(out) + "</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    panels = load(args.csv)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(svg(panels))


if __name__ == "__main__":
    main()

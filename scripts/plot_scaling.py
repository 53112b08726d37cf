#!/usr/bin/env python3
"""Plots how evaluation cost grows with the number of rules, from criterion's results.

Run `cargo bench -p tower-mesh-benches --bench evaluate` first, then `python3 scripts/plot_scaling.py`. It reads
target/criterion/evaluate_rules_<N>_<case>/new/estimates.json, prints a Markdown table, and
writes docs/scaling.svg (a log-log line chart; no third-party packages needed).
"""

import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [1, 10, 100, 1000, 10000]
CASES = ["first", "last", "none"]
COLOURS = {"first": "#1b9e77", "last": "#d95f02", "none": "#7570b3"}


def estimate(n, case):
    path = os.path.join(ROOT, "target", "criterion", f"evaluate_rules_{n}_{case}", "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]  # nanoseconds


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main():
    try:
        data = {c: [estimate(n, c) for n in SIZES] for c in CASES}
    except FileNotFoundError as e:
        sys.exit(f"missing criterion results ({e.filename}); run `cargo bench -p tower-mesh-benches --bench evaluate` first")

    print("| rules | first | last | none | last / first |")
    print("|---:|---:|---:|---:|---:|")
    for i, n in enumerate(SIZES):
        f, l, z = (data[c][i] for c in CASES)
        print(f"| {n:,} | {fmt(f)} | {fmt(l)} | {fmt(z)} | {l / f:.2f} |")

    width, height, left, right, top, bottom = 640, 400, 70, 130, 30, 50
    lo = 10 ** math.floor(math.log10(min(min(v) for v in data.values())))
    hi = 10 ** math.ceil(math.log10(max(max(v) for v in data.values())))
    x = lambda i: left + i * (width - left - right) / (len(SIZES) - 1)
    y = lambda ns: top + (math.log10(hi) - math.log10(ns)) / (math.log10(hi) - math.log10(lo)) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">tower-mesh: evaluate/rules/N (median, log-log)</text>']
    decade = lo
    while decade <= hi:
        yy = y(decade)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(decade)}</text>')
        decade *= 10
    for i, n in enumerate(SIZES):
        out.append(f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle">{n:,}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">rules (VirtualService routes)</text>')
    for k, case in enumerate(CASES):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(data[case]))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[case]}" stroke-width="2"/>')
        for i, v in enumerate(data[case]):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{COLOURS[case]}"/>')
        ly = top + 20 + 18 * k
        out.append(f'<line x1="{width - right + 15}" y1="{ly}" x2="{width - right + 40}" y2="{ly}" stroke="{COLOURS[case]}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 46}" y="{ly + 4}">{case}</text>')
    out.append("</svg>")
    path = os.path.join(ROOT, "docs", "scaling.svg")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"\nwrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()

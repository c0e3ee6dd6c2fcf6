#!/usr/bin/python3
"""Medians [min-max] over the rounds in this folder, per build, scenario and format, and
new / old per round for the worker's events per core-second (run_rounds.sh's outputs)."""
import glob
import json
import os
import statistics
import sys

here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
runs = {}
for path in sorted(glob.glob(os.path.join(here, "*-*.json"))):
    v, r = os.path.basename(path)[:-5].rsplit("-", 1)
    with open(path) as f:
        doc = json.load(f)
    for x in doc["results"]:
        runs.setdefault((v, x["scenario"], x["format"]), {})[int(r)] = x


def cell(vals, scale=1e6):
    vals = [v / scale for v in vals if v is not None]
    if not vals:
        return "-"
    return f"{statistics.median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]"


print("| build | scenario | format | rounds | M events/s (wall) | M per RX core-s | "
      "M per worker core-s | CPU s per M events | counts = model |")
print("|---|---|---|---|---|---|---|---|---|")
for (v, sc, fmt), rs in sorted(runs.items()):
    xs = list(rs.values())
    match = [x.get("counts_match_model") for x in xs if "counts_match_model" in x]
    print(f"| {v} | {sc} | {fmt} | {len(xs)} | {cell([x['items_per_s'] for x in xs])} | "
          f"{cell([x['items_per_rx_core_s'] for x in xs])} | "
          f"{cell([x['items_per_worker_core_s'] for x in xs])} | "
          f"{cell([x['cpu_s_per_million'] for x in xs], 1)} | "
          f"{'-' if not match else ('all' if all(match) else f'{sum(match)}/{len(match)}')} |")
print()
print("| scenario | format | new / old, worker events per core-s, per round | median |")
print("|---|---|---|---|")
for (v, sc, fmt), rs in sorted(runs.items()):
    if v != "new" or ("old", sc, fmt) not in runs:
        continue
    old = runs[("old", sc, fmt)]
    ratios = [rs[r]["items_per_worker_core_s"] / old[r]["items_per_worker_core_s"]
              for r in sorted(rs) if r in old and rs[r]["items_per_worker_core_s"]
              and old[r]["items_per_worker_core_s"]]
    if ratios:
        print(f"| {sc} | {fmt} | {' '.join(f'{x:.2f}' for x in ratios)} | "
              f"{statistics.median(ratios):.2f} |")

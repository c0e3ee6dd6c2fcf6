#!/usr/bin/env python3
# Medians of an interleaved worker_bench A/B: a folder of ab_VARIANT_ROUND.json (Google
# Benchmark JSON), the base variant, then the others. Per benchmark: M events per worker
# CPU-second per round, the median, the ratio of medians to the base and each round's ratio.
# Usage: worker_ab_summary.py FOLDER old new [other...]
import glob, json, re, statistics, sys

folder, base, others = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {}  # benchmark -> variant -> round -> (M events/s, B per stored event)
for f in glob.glob(folder + '/ab_*_*.json'):
    m = re.search(r'ab_(\w+?)_(\d+)\.json$', f)
    for b in json.load(open(f))['benchmarks']:
        runs.setdefault(b['name'], {}).setdefault(m.group(1), {})[int(m.group(2))] = (
            b['items_per_second'] / 1e6, b.get('B_per_row', 0.0))
for name, by in runs.items():
    rounds = sorted(set(by[base]).intersection(*[set(by.get(v, {})) for v in others]))
    a = [by[base][r][0] for r in rounds]
    ma = statistics.median(a)
    print(f'{name} ({len(rounds)} rounds)')
    print(f'  {base:5s} {ma:.3f} = {1e3 / ma:.0f} ns/event  [{" ".join(f"{x:.3f}" for x in a)}]')
    for v in others:
        b = [by[v][r][0] for r in rounds]
        mb = statistics.median(b)
        per = [y / x for x, y in zip(a, b)]
        print(f'  {v:5s} {mb:.3f} = {1e3 / mb:.0f} ns/event  [{" ".join(f"{x:.3f}" for x in b)}]')
        print(f'        {v}/{base}: {mb / ma:.2f} (medians); per round [{" ".join(f"{x:.2f}" for x in per)}], '
              f'median {statistics.median(per):.2f}, above 1 in {sum(x > 1 for x in per)} of {len(per)}; '
              f'B/row {statistics.median(by[v][r][1] for r in rounds):.2f} vs '
              f'{statistics.median(by[base][r][1] for r in rounds):.2f}')

#!/usr/bin/env python3
# Medians over rounds.sh's logs: per input and configuration, bytes per row, median ns/row
# and the median of the per-round ratios to level 1 of the same round.
import re, statistics, sys, glob, collections
ns = collections.defaultdict(list); size = {}; loads = []
for f in sorted(glob.glob(sys.argv[1] + '/round_*.txt')):
    sec = None; base = {}; seen = set()
    for l in open(f):
        if l.startswith('round'): loads.append(l.strip()); continue
        if l.startswith('=='): sec = l[3:].strip(); continue
        m = re.match(r'(level.*?) : +(\d+) B +([\d.]+) B/row +([\d.]+) ns/row', l) or \
            re.match(r'(.*?): +(\d+) B +([\d.]+) B/row +([\d.]+) ns/row', l)
        if not m: continue
        cfg = re.sub(r'\s+', ' ', m.group(1)).strip()
        if (sec, cfg) in seen: cfg += ' (again, last)'
        seen.add((sec, cfg)); key = (sec, cfg)
        ns[key].append(float(m.group(4))); size[key] = float(m.group(3))
        if sec.endswith('dict'):
            if cfg.startswith('zstd'): base[sec] = float(m.group(4))
            else: ns[(sec, cfg + ' /zstd')].append(float(m.group(4)) / base[sec])
        elif cfg.startswith('level 1 strategy 0 wlog 0 hlog 0 clog 0 slog 0 mml 0 tlen -1 lit 0'):
            base[sec] = float(m.group(4))
        if not sec.endswith('dict'): ns[(sec, cfg + ' /L1')].append(float(m.group(4)) / base[sec])
for l in loads: print(l)
print(f"{'input':16s} {'configuration':75s} {'B/row':>7s} {'ns/row (median)':>16s} {'ratio (median)':>15s}  per round")
for key, v in ns.items():
    if key[1].endswith(('/L1', '/zstd')): continue
    r = ns.get((key[0], key[1] + ' /L1')) or ns.get((key[0], key[1] + ' /zstd')) or [1]
    print(f"{key[0]:16s} {key[1]:75s} {size[key]:7.2f} {statistics.median(v):16.1f} {statistics.median(r):15.2f}  " + ' '.join(f'{x:.1f}' for x in v))

"""Medians of the interleaved runs (docs/benchmarks.md, "Kafka acks=all: commit on demand"):
python3 bench/results/2026-12-03-vm-kafka-acksall/summarize.py"""
import json, glob, os, statistics, sys
groups = {}
for d in glob.glob('' + os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ab-*') + ''):
    f = os.path.join(d, 'results.json')
    if not os.path.exists(f): continue
    n = int(os.path.basename(d).split('-')[1]); v = os.path.basename(d).split('-')[2]
    r = json.load(open(f))
    kern = [x for x in r['runs'] if x['system'] == 'sluice_kernel']
    kpcs = kern[0]['events_received'] / kern[0]['server_cpu_s'] if kern else None
    for x in r['runs']:
        if 'error' in x or not x.get('seconds'): continue
        eps = x['events_received'] / x['seconds']; pcs = x['events_received'] / x['server_cpu_s']
        g = groups.setdefault((v, x['system']), [])
        g.append((n, eps, pcs, pcs / kpcs if kpcs else None, (x.get('ack_latency') or {}).get('p50'), (x.get('ack_latency') or {}).get('p99')))
for (v, s), g in sorted(groups.items(), key=lambda t: (t[0][1], t[0][0])):
    g.sort()
    med = lambda i: statistics.median(t[i] for t in g if t[i] is not None)
    print(f"{s:32s} {v:4s} runs {[t[0] for t in g]} ev/s {med(1)/1e3:6.0f}k [{min(t[1] for t in g)/1e3:.0f}-{max(t[1] for t in g)/1e3:.0f}] per CPU-s {med(2)/1e3:5.0f}k [{min(t[2] for t in g)/1e3:.0f}-{max(t[2] for t in g)/1e3:.0f}] vs UDP x{med(3):.2f} [{min(t[3] for t in g):.2f}-{max(t[3] for t in g):.2f}]" + (f" p50 {med(4)/1e3:.1f}ms p99 {med(5)/1e3:.0f}ms" if g[0][4] else ""))

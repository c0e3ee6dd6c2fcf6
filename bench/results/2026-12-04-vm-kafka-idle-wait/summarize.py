"""Medians of the interleaved poll/wait runs (docs/benchmarks.md, "Kafka acks=all: the idle
Kafka RX blocks in io_uring"): python3 bench/results/2026-12-04-vm-kafka-idle-wait/summarize.py
Per row and variant: events/s, events per server CPU-second, its ratio to the same run's
kernel UDP row, produce-ack p50/p99; then per row the wait/poll ratios of adjacent runs."""
import json, glob, os, statistics, sys
# The runs' folder: this script's own, or the one given (another A/B of the same shape).
here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
groups, by_run = {}, {}
for d in glob.glob(os.path.join(here, 'ab-*')):
    f = os.path.join(d, 'results.json')
    if not os.path.exists(f):
        continue
    _, n, v = os.path.basename(d).split('-')
    n = int(n)
    r = json.load(open(f))
    kern = [x for x in r['runs'] if x['system'] == 'sluice_kernel' and x.get('server_cpu_s')]
    kpcs = kern[0]['events_received'] / kern[0]['server_cpu_s'] if kern else None
    for x in r['runs']:
        if 'error' in x or not x.get('seconds'):
            continue
        eps = x['events_received'] / x['seconds']
        pcs = x['events_received'] / x['server_cpu_s']
        lat = x.get('ack_latency') or {}
        row = (n, eps, pcs, pcs / kpcs if kpcs else None, lat.get('p50'), lat.get('p99'),
               x.get('correct_counters'), x.get('loss'))
        groups.setdefault((v, x['system']), []).append(row)
        by_run[(n, x['system'])] = (v, row)
med = lambda g, i: statistics.median(t[i] for t in g if t[i] is not None)
for (v, s), g in sorted(groups.items(), key=lambda t: (t[0][1], t[0][0])):
    g.sort()
    line = (f"{s:32s} {v:4s} runs {[t[0] for t in g]} ev/s {med(g, 1)/1e3:6.0f}k "
            f"[{min(t[1] for t in g)/1e3:.0f}-{max(t[1] for t in g)/1e3:.0f}] per CPU-s "
            f"{med(g, 2)/1e3:5.0f}k [{min(t[2] for t in g)/1e3:.0f}-{max(t[2] for t in g)/1e3:.0f}] "
            f"vs UDP x{med(g, 3):.2f} [{min(t[3] for t in g):.2f}-{max(t[3] for t in g):.2f}]")
    if g[0][4]:
        line += f" p50 {med(g, 4)/1e3:.1f}ms p99 {med(g, 5)/1e3:.0f}ms"
    line += f" correct {[t[6] for t in g]} loss {[t[7] for t in g]}"
    print(line)
print("wait/poll, adjacent runs (poll n, wait n+1):")
for s in sorted({k[1] for k in by_run}):
    rs = []
    for (n, sys_), (v, row) in sorted(by_run.items()):
        if sys_ != s or v != 'poll' or (n + 1, s) not in by_run:
            continue
        w = by_run[(n + 1, s)][1]
        rs.append((w[1] / row[1], w[2] / row[2]))
    if rs:
        print(f"  {s:32s} ev/s x{statistics.median(a for a, _ in rs):.2f} "
              f"per CPU-s x{statistics.median(b for _, b in rs):.2f} "
              f"(pairs {[f'{a:.2f}/{b:.2f}' for a, b in rs]})")

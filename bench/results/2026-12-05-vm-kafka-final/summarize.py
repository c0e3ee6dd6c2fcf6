"""Summary of the final item-9 rounds (docs/benchmarks.md, "Kafka produce: final item-9
rows"): python3 bench/results/2026-12-05-vm-kafka-final/summarize.py [--tag T] [ROUND ...]
(--tag T: the plot data go to per-cpu-s-T.dat and ack-latency-T.dat; plot.gp's tag)
Per row: events/s, events per server CPU-second, and each run's ratio to the kernel UDP
row of the same round and repetition (median, range); then the produce-ack latency runs."""
import glob, json, os, statistics, sys

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
tag = ''
if args[:1] == ['--tag']:
    tag, args = '-' + args[1], args[2:]
rounds = args or sorted(os.path.basename(os.path.dirname(f))
                                for f in glob.glob(os.path.join(here, 'round*', 'results.json')))
rows, lat = {}, []
for rd in rounds:
    r = json.load(open(os.path.join(here, rd, 'results.json')))
    kern = {x['rep']: x['events_received'] / x['server_cpu_s'] for x in r['runs']
            if x['system'] == 'sluice_kernel' and 'error' not in x and x.get('server_cpu_s')}
    for x in r['runs']:
        if 'error' in x or not x.get('seconds'):
            rows.setdefault(x['system'], []).append((rd, x.get('rep'), 'error', x.get('error', '')[-200:]))
            continue
        pcs = x['events_received'] / x['server_cpu_s']
        k = kern.get(x['rep'])
        a = x.get('ack_latency') or {}
        rows.setdefault(x['system'], []).append(
            (rd, x['rep'], x['events_received'] / x['seconds'], pcs, pcs / k if k else None,
             a.get('p50'), a.get('p99'), x.get('correct_counters'), x.get('loss'),
             x.get('rx_dropped'), (x.get('kafka') or {}).get('bytes_per_produce')))
    for l in r.get('kafka_latency', []):
        lat.append((rd, l))

def rng(v, f=lambda t: f'{t:.0f}'):
    v = [t for t in v if t is not None]
    return f'{f(statistics.median(v))} [{f(min(v))}-{f(max(v))}]' if v else '-'

for s, g in rows.items():
    ok = [t for t in g if t[2] != 'error']
    errs = [t for t in g if t[2] == 'error']
    print(f'{s:32s} n={len(ok)} ev/s {rng([t[2] / 1e3 for t in ok])}k '
          f'per CPU-s {rng([t[3] / 1e3 for t in ok])}k '
          f'vs UDP {rng([t[4] for t in ok], lambda t: f"{t:.2f}")} '
          f'ack p50 {rng([t[5] and t[5] / 1e3 for t in ok], lambda t: f"{t:.1f}")} ms '
          f'p99 {rng([t[6] and t[6] / 1e3 for t in ok], lambda t: f"{t:.0f}")} ms')
    for t in ok:
        print(f'    {t[0]} rep {t[1] + 1}: {t[2] / 1e3:.0f}k ev/s, {t[3] / 1e3:.0f}k per CPU-s, '
              f'x{t[4]:.2f} UDP' if t[4] else '', f'correct {t[7]} loss {t[8]} rx_dropped {t[9]}',
              f'p99 {t[6] / 1e3:.1f} ms' if t[6] else '',
              f'{t[10] / 1e3:.0f} kB/Produce' if t[10] else '')
    for t in errs:
        print(f'    {t[0]} rep {t[1]}: ERROR {t[3]}')
print('produce-ack latency (paced confluent-kafka), p50 / p99 / p99.9 ms:')
for rd, l in lat:
    if 'error' in l:
        print(f'  {rd} acks={l["acks"]} {l["load_pct"]}%: ERROR {l["error"][-200:]}')
        continue
    a = l.get('latency') or {}
    f = lambda k: f'{a[k] / 1e3:.2f}' if a.get(k) is not None else '-'
    print(f'  {rd} acks={l["acks"]:3s} {l["load_pct"]:2d}%: offered {l["offered_eps"] / 1e3:.1f}k '
          f'got {l["events_per_s"] / 1e3:.1f}k/s, {f("p50")} / {f("p99")} / {f("p999")} ms, '
          f'{a.get("count")} requests, {(l.get("bytes_per_produce") or 0) / 1e3:.0f} kB/Produce, '
          f'loss {l["loss"]}, p99 <= 2 x {l["flush_interval_ms"]} ms: '
          f'{a.get("p99", 1e18) <= 2 * l["flush_interval_ms"] * 1000}')

# Data for plot.gp: events per server CPU-second per run (one column per row), and the
# produce-ack percentiles by load (one line per round, acks and load).
names = [s for s in rows if s != 'sluice_kernel']
with open(os.path.join(here, f'per-cpu-s{tag}.dat'), 'w') as f:
    f.write('run ' + ' '.join(['sluice_kernel'] + names) + '\n')  # k events per server CPU-s
    runs = sorted({(t[0], t[1]) for g in rows.values() for t in g})
    for i, key in enumerate(runs):
        vals = []
        for s in ['sluice_kernel'] + names:
            v = [t[3] / 1e3 for t in rows[s] if (t[0], t[1]) == key and t[2] != 'error']
            vals.append(f'{v[0]:.1f}' if v else 'NaN')
        f.write(f'{i + 1} ' + ' '.join(vals) + f'  # {key[0]} rep {key[1] + 1}\n')
with open(os.path.join(here, f'ack-latency{tag}.dat'), 'w') as f:
    f.write('# acks load_pct p50_ms p99_ms p999_ms  (round)\n')
    for acks in ('1', 'all'):
        for rd, l in lat:
            if l['acks'] != acks or 'error' in l or not l.get('latency'):
                continue
            a = l['latency']
            f.write(f'{acks} {l["load_pct"]} {a["p50"] / 1e3:.3f} {a["p99"] / 1e3:.3f} '
                    f'{a["p999"] / 1e3:.3f}  # {rd}\n')
        f.write('\n\n')

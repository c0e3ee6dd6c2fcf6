# one paced latency run (memif or kernel) via the harness's own code; prints progress
import sys, os, time, threading, json
REPO = os.environ.get('SLUICE_REPO', os.getcwd())  # the worktree (a release build in REPO/build)
sys.path.insert(0, os.path.join(REPO, 'bench/e2e'))
import harness as H
path, pps, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extra = sys.argv[4:]
class A: pass
a = H.main.__globals__['argparse'].Namespace(build=os.path.join(REPO, 'build'), out='/tmp/hl/out', quick=True,
    events=events, reps=1, scaling_reps=1, workers=1, timeout=120, seed=7, skip_peers=True, systems=None,
    skip_latency=False, skip_kafka=True, skip_scaling=True, hammer_clients=0, skip_microbench=True,
    sluiced_config=(extra[0] if extra else None), keep=True, build_seconds=None, tmp_dir='/var/tmp')
h = H.Harness(a)
ds = '/var/tmp/hl-ds-%d' % events
if not os.path.exists(ds + '/expected/counters.json'):
    h.tmp_saved = h.tmp
    h.make_dataset()
    os.system(f'rm -rf {ds}; cp -r {h.dataset} {ds}')
    json.dump({'now_ms': h.now_ms}, open(ds + '/now.json', 'w'))
else:
    h.now_ms = json.load(open(ds + '/now.json'))['now_ms']
    h.dataset = ds; h.pcap = ds + '/events.pcap'
    h.expected = json.load(open(ds + '/expected/counters.json'))
    h.ds = {'json': {'pcap': h.pcap, 'expected': h.expected}}
    import csv
    h.expected_windows = {}
    for row in csv.DictReader(open(ds + '/expected/windows.csv')):
        h.expected_windows[(int(row['window_start_ms']), row['page'])] = int(row['count'])
    h.run_windows = {}
if os.environ.get('GEN_WRAP'): h.exe['sluice_gen'] = os.environ['GEN_WRAP']
t0 = time.time()
samples = {}
stop = [False]
def sampler():
    me = os.getpid()
    while not stop[0]:
        for pid in os.listdir('/proc'):
            if not pid.isdigit(): continue
            try:
                if int(open(f'/proc/{pid}/stat').read().split(')')[1].split()[1]) != me: continue
                if 'sluiced' not in open(f'/proc/{pid}/comm').read(): continue
                for tid in os.listdir(f'/proc/{pid}/task'):
                    comm = open(f'/proc/{pid}/task/{tid}/comm').read().strip()
                    run, wait, n = map(int, open(f'/proc/{pid}/task/{tid}/schedstat').read().split())
                    st = open(f'/proc/{pid}/task/{tid}/status').read()
                    vol = int(st.split('voluntary_ctxt_switches:')[1].split()[0])
                    nonvol = int(st.split('nonvoluntary_ctxt_switches:')[1].split()[0])
                    samples.setdefault((pid, tid, comm), []).append((time.monotonic(), run, wait, n, vol, nonvol))
            except (OSError, ValueError, IndexError):
                pass
        time.sleep(0.1)
th = threading.Thread(target=sampler, daemon=True); th.start()
if path == 'dpdk':
    r = h.run_sluice_memif(pps, tag='one_dpdk')
else:
    r = h.run_sluice_kernel(pps=pps, tag='one_kernel')
stop[0] = True
sched = {}
for (pid, tid, comm), v in samples.items():
    if len(v) < 2: continue
    a, b = v[0], v[-1]
    dt = b[0] - a[0]
    sched[f"{comm}/{tid}"] = {"wall_s": round(dt, 2), "cpu_s": round((b[1]-a[1])/1e9, 3),
        "runq_wait_s": round((b[2]-a[2])/1e9, 3), "slices": b[3]-a[3],
        "vol_cs": b[4]-a[4], "invol_cs": b[5]-a[5]}
lat = h.latency_percentiles(r['stats']['latency'])
print(json.dumps({'path': path, 'pps': pps, 'events_per_s': r['events_received'] / r['seconds'],
  'seconds': r['seconds'], 'correct': r['correct_counters'], 'query_correct': r.get('query_correct'),
  'wv': lat.get('window_visible'), 'durable': lat.get('durable'),
  'bytes_per_event': r.get('bytes_per_event'), 'syncs': sum(t.get('syncs', 0) for t in r['stats'].get('storage', {}).get('tables', [])), 'bp': r['stats']['per_core'][0].get('backpressure_waits'), 'sched': sched}, indent=None))

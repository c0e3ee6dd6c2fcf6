import sys, re, collections
f = sys.argv[1]
seal_start = {}; seals = []; seal_by = collections.defaultdict(list)
wake = {}; off = {}; delays = collections.defaultdict(list); pre = collections.defaultdict(list)
names = {}
rx = re.compile(r'^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
for line in open(f):
    m = rx.match(line)
    if not m: continue
    comm, tid, cpu, t, ev, tr = m.groups(); tid = int(tid); t = float(t)
    if ev.endswith('seal'):
        seal_start[tid] = t
    elif ev.endswith('seal_ret__return'):
        if tid in seal_start:
            d_ = (t - seal_start.pop(tid)) * 1e3; seals.append(d_); seal_by[(comm, tid)].append(d_)
    elif ev == 'sched:sched_wakeup':
        pid = int(re.search(r' pid=(\d+)', tr).group(1))
        names[pid] = re.search(r'comm=(\S+)', tr).group(1)
        wake[pid] = t
    elif ev == 'sched:sched_switch':
        d = dict(kv.split('=', 1) for kv in re.findall(r'(\w+=\S+)', tr))
        prev, nxt = int(d['prev_pid']), int(d['next_pid'])
        names[prev] = d['prev_comm']; names[nxt] = d['next_comm']
        if d['prev_state'].startswith('R'):
            off[prev] = t  # preempted while runnable
        if nxt in wake:
            delays[nxt].append((t - wake.pop(nxt)) * 1e3)
        elif nxt in off:
            pre[nxt].append((t - off.pop(nxt)) * 1e3)
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))] if v else None
print(f"seals: n={len(seals)} p50={q(seals,.5)} p99={q(seals,.99)} max={max(seals) if seals else None} ms total={sum(seals):.1f} ms")
for k, v in seal_by.items():
    print("  seals by", k, "n", len(v), "ms:", " ".join(f"{x:.2f}" for x in sorted(v)[-12:]))
for pid in sorted(set(delays) | set(pre)):
    n = names.get(pid, '?')
    if not (n.startswith('rte') or n.startswith('sluiced') or n.startswith('iou')): continue
    d, p = delays.get(pid, []), pre.get(pid, [])
    print(f"{n}/{pid}: wakeup->run n={len(d)} p50={q(d,.5) or 0:.3f} p99={q(d,.99) or 0:.3f} max={max(d) if d else 0:.2f} ms | preempted n={len(p)} p50={q(p,.5) or 0:.2f} p99={q(p,.99) or 0:.2f} max={max(p) if p else 0:.2f} total={sum(p):.1f} ms")

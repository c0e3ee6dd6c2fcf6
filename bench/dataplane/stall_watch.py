#!/usr/bin/python3
"""Stall detector for the e2e_rate `inf-dedup` rig (issue 15: "both lcores idle, capture
unfinished").

Starts sluiced exactly as bench/dataplane/e2e_rate.py does (net_pcap infinite_rx replaying
a small capture, 1 RX + 1 worker lcore), then samples every --interval seconds: the stats
totals (events done, back-pressure waits, frames pulled), the RX -> worker ring's
occupancy, the writers' syncs, and per thread of sluiced its state, CPU time, the syscall
it is in, its kernel wait channel and its run-queue wait (/proc/.../schedstat: time it was
runnable but not running), and each CPU's steal time. A stall is "events done did not move for more than
--stall-s while the port has frames (infinite_rx always has)". Each stall is reported with
where every thread was (syscall, wchan, kernel stack of the lcores), how much CPU each used
meanwhile and how long each waited runnable for a CPU: a thread that sleeps (the idle
protocol) gains neither; one that the scheduler does not run gains run-queue wait; one
blocked in the kernel (a disk wait) sits in a syscall with state D or S. Standard library only; run from the repository root:

  bench/dataplane/stall_watch.py --build build --runs 5 --seconds 20 [--out FILE.json]

--freeze AT:FOR stops sluiced (SIGSTOP) AT seconds into each run for FOR seconds: a stall
made on purpose, to check that the detector reports one (and what a process that is not
run looks like: every thread in state T, no CPU, no syscall progress).
"""
import signal
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # importing e2e_rate leaves no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e_rate  # noqa: E402
from harness import control  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SYSCALLS = {"0": "read", "1": "write", "7": "poll", "35": "nanosleep", "74": "fsync",
            "75": "fdatasync", "202": "futex", "230": "clock_nanosleep", "232": "epoll_wait",
            "257": "openat", "2": "open", "271": "ppoll", "426": "io_uring_enter",
            "281": "epoll_pwait", "23": "select", "47": "recvmsg", "45": "recvfrom"}


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def threads(pid):
    """{tid: (name, state, cpu_s, syscall, wchan, runq_wait_s)} for every thread of sluiced."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        raw = read(f"/proc/{pid}/task/{tid}/stat")
        if not raw:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        sc = read(f"/proc/{pid}/task/{tid}/syscall").split()
        sc = "running" if not sc or sc[0] == "running" else SYSCALLS.get(sc[0], "sys" + sc[0])
        wchan = read(f"/proc/{pid}/task/{tid}/wchan").strip() or "-"
        ss = read(f"/proc/{pid}/task/{tid}/schedstat").split()
        runq = int(ss[1]) / 1e9 if len(ss) > 1 else 0.0
        out[tid] = (name, f[0], (int(f[11]) + int(f[12])) / CLK_TCK, sc, wchan, runq)
    return out


def steal():
    """{cpuN: steal seconds} from /proc/stat."""
    out = {}
    for line in read("/proc/stat").splitlines():
        f = line.split()
        if f and f[0].startswith("cpu") and f[0] != "cpu":
            out[f[0]] = int(f[8]) / CLK_TCK
    return out


def done(totals):
    return totals["events_accepted"] + totals["duplicates"] + totals["dead_letters"]


def sample(p, sock):
    t0 = time.monotonic()
    st = control(sock, "stats", timeout=10)
    t = time.monotonic()  # the counters are as of the reply
    t_stats = t - t0
    th = threads(p.pid)
    tot = st["totals"]
    rings = st.get("rings", {})
    occ = rings.get("ring_occupancy_total") if isinstance(rings, dict) else None
    if occ is None:
        occ = st.get("lag", {}).get("ring_occupancy_total")
    syncs = {x["table"]: x["syncs"] for x in st.get("storage", {}).get("tables", [])} \
        if isinstance(st.get("storage"), dict) else {}
    slept = max([c.get("idle_slept_with_work_max_us", 0) for c in st.get("per_core", [])
                 if c.get("role") == "worker"] or [0])
    return {"t": t, "stats_s": t_stats, "done": done(tot), "rx_packets": tot.get("rx_packets", 0),
            "slept_with_work_max_us": slept,
            # per RX lcore in per_core (totals has no back-pressure count)
            "bp": sum(c.get("backpressure_waits", 0) for c in st.get("per_core", [])
                      if c.get("role") == "rx"), "ring": occ, "syncs": syncs, "threads": th,
            "steal": steal()}


def watch(runner, a, fmt, small, run):
    tag = f"stall-watch-{fmt}-{run}"
    p, sock, run_dir, prefix, roles = runner.start(
        tag, [f"net_pcap0,rx_pcap={small},infinite_rx=1"], [])
    stalls = []
    samples = 0
    slow_stats = 0
    longest = 0.0
    try:
        first = prev = sample(p, sock)
        moved = prev  # the last sample where done moved
        episode = None
        start = time.monotonic()
        end = start + a.seconds
        frozen = None
        while time.monotonic() < end:
            time.sleep(a.interval)
            if a.freeze:
                at, length = (float(x) for x in a.freeze.split(":"))
                el = time.monotonic() - start
                if frozen is None and el >= at:
                    os.kill(p.pid, signal.SIGSTOP)
                    frozen = True
                elif frozen and el >= at + length:
                    os.kill(p.pid, signal.SIGCONT)
                    frozen = False
            if frozen:
                # The stats call would wait for the stopped control thread: /proc only.
                s = dict(prev, t=time.monotonic(), threads=threads(p.pid), steal=steal())
            else:
                s = sample(p, sock)
            samples += 1
            if s["stats_s"] > 0.5:
                slow_stats += 1
            if s["stats_s"] > a.stall_s and episode is None:
                # sluiced did not answer for that long: no sample fell inside the stall,
                # so it is described across it (CPU, run-queue wait since the last sample).
                ep = describe(prev, s, roles, p.pid)
                ep.update(retrospective=True, stats_call_s=round(s["stats_s"], 3),
                          done_moved=s["done"] - prev["done"])
                print(f"stall_watch: run {run}: SLOW STATS {json.dumps(ep)}", file=sys.stderr,
                      flush=True)
                stalls.append(ep)
            if s["done"] != moved["done"]:
                longest = max(longest, s["t"] - moved["t"])
                if episode:
                    episode["ended_after_s"] = round(s["t"] - moved["t"], 3)
                    episode["done_after"] = s["done"]
                    stalls.append(episode)
                    episode = None
                moved = s
            elif s["t"] - moved["t"] > a.stall_s and episode is None:
                episode = describe(moved, s, roles, p.pid)
                print(f"stall_watch: run {run}: STALL {json.dumps(episode)}", file=sys.stderr,
                      flush=True)
            prev = s
        if episode:
            episode["ended_after_s"] = None  # still stalled at the end of the run
            episode["still_stalled_for_s"] = round(prev["t"] - moved["t"], 3)
            stalls.append(episode)
        rate = (prev["done"] - first["done"]) / (prev["t"] - first["t"])
    finally:
        runner.stop(p, sock, prefix)
    return {"run": run, "format": fmt, "samples": samples, "slow_stats_calls": slow_stats,
            "worker_slept_with_work_max_us": prev.get("slept_with_work_max_us"),
            "longest_gap_s": round(max(longest, prev["t"] - moved["t"]), 3),
            "events_per_s": rate, "stalls": stalls, "load": os.getloadavg()}


def describe(a, b, roles, pid):
    """What every thread did between sample a (done last moved) and sample b."""
    th = {}
    for tid, (name, state, cpu, sc, wchan, runq) in b["threads"].items():
        before = a["threads"].get(tid, (None, None, cpu, None, None, runq))
        role = roles.get(name, "")
        th[f"{name}/{tid}"] = {"role": role, "state": state, "cpu_s": round(cpu - before[2], 3),
                               "runq_wait_s": round(runq - before[5], 3),
                               "syscall": sc, "wchan": wchan}
        if role in ("worker", "rx"):
            th[f"{name}/{tid}"]["kstack"] = [l.split()[-1] for l in
                                             read(f"/proc/{pid}/task/{tid}/stack").splitlines()]
    return {"for_s": round(b["t"] - a["t"], 3), "done": b["done"], "ring": b["ring"],
            "bp_waits": b["bp"] - a["bp"], "rx_packets": b["rx_packets"] - a["rx_packets"],
            "syncs": b["syncs"], "threads": th, "load": os.getloadavg(),
            # worker_lcore's detector: its longest idle wait that ended with work waiting.
            "worker_slept_with_work_max_us": b.get("slept_with_work_max_us"),
            "steal_s": {c: round(v - a["steal"].get(c, v), 3) for c, v in b["steal"].items()},
            "io_pressure": read("/proc/pressure/io").splitlines()[0:1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--formats", default="binary")
    ap.add_argument("--inf-events", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="watched per run")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--stall-s", type=float, default=1.0)
    ap.add_argument("--slots", type=int, default=0)
    ap.add_argument("--out", default="")
    ap.add_argument("--freeze", default="", help="AT:FOR: SIGSTOP sluiced AT s into a run, FOR s")
    a = ap.parse_args()
    a.events = a.inf_events  # e2e_rate.Runner's fields
    runner = e2e_rate.Runner(a)
    results = []
    try:
        for fmt in a.formats.split(","):
            small = runner.generate(fmt, a.inf_events, f"gen-small-{fmt}")[0]
            for run in range(a.runs):
                r = watch(runner, a, fmt, small, run)
                print(f"stall_watch: run {run} {fmt}: {r['events_per_s']:.0f} events/s, "
                      f"{len(r['stalls'])} stalls, longest gap {r['longest_gap_s']} s, "
                      f"worker slept with work <= {r['worker_slept_with_work_max_us']} us, load {r['load'][0]:.1f}", file=sys.stderr,
                      flush=True)
                results.append(r)
    finally:
        import shutil
        shutil.rmtree(runner.tmp, ignore_errors=True)
    text = json.dumps({"args": vars(a), "results": results}, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(json.dumps([{"run": r["run"], "stalls": len(r["stalls"]),
                       "events_per_s": round(r["events_per_s"])} for r in results]))


if __name__ == "__main__":
    main()

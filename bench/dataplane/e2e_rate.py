#!/usr/bin/python3
"""End-to-end rate of sluice's dataplane, side by side in one run (issue 3).

Scenarios, each its own sluiced (1 RX lcore, 1 worker lcore by default), JSON and binary
events from the same sluice-gen seed:

  null         net_null: frames/s through RX (zeroed frames, all ignored): the RX loop floor
  inf-sink     net_pcap infinite_rx, --bench-sink: RX -> rings -> workers, nothing processed
  inf-dedup    net_pcap infinite_rx, full pipeline: after the first pass every event is a
               duplicate (dedup path; duplicates are not stored)
  once-disk    net_pcap read once, full pipeline, store on disk (O_DIRECT where possible)
  once-tmpfs   net_pcap read once, full pipeline, store on tmpfs (no disk I/O)
  kernel-sink  kernel UDP (io_uring multishot) from loopback via sluice-blast, --bench-sink
  kernel-full  kernel UDP from loopback, full pipeline, store on disk

Rates are measured between two stats samples (infinite sources: a fixed window after a
warm-up; read-once sources: from the moment sluiced answers until every event is done).
CPU is read per thread from /proc, so each lcore's busy time is known: events per RX
core-second and per worker core-second, and sluiced's CPU-seconds per million events;
also each lcore's run-queue wait (runnable, not run) and how long the stats calls took
(slow_stats_call: one took > 0.25 s, so the row spans a stall of the machine or of
sluiced: bench/dataplane/stall_watch.py watches one). Standard library only. Run from the repository root:

  bench/dataplane/e2e_rate.py --build build-release [--events 300000] [--window 4]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import Proc, control, free_port, wait_until  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"e2e_rate: {msg}", file=sys.stderr, flush=True)


def thread_cpu(pid):
    """{thread name: CPU seconds} for every thread of a live process."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        out[name] = out.get(name, 0.0) + cpu
    return out


def thread_runq(pid):
    """{thread name: seconds spent runnable but not running} (/proc/.../schedstat)."""
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ss = f.read().split()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        out[name] = out.get(name, 0.0) + int(ss[1]) / 1e9
    return out


# A stats call slower than this means sluiced's control thread (or this harness) was not
# run for that long: the row was measured across a stall of the machine, not sluiced's rate
# (docs/RELIABILITY.md, "Stalls with both lcores idle").
SLOW_STATS_S = 0.25


def cpu_delta(a, b):
    return {k: b.get(k, 0.0) - a.get(k, 0.0) for k in b}


class Runner:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="sluice-e2e-rate-")
        self.exe = {"sluiced": f"{a.build}/control/sluiced", "gen": f"{a.build}/tools/sluice-gen",
                    "blast": f"{a.build}/bench/sluice-blast"}
        cpus = sorted(os.sched_getaffinity(0))
        # main + RX on the first CPU, the worker on the next (one core each when there are 2).
        self.lcores = f"0@{cpus[0]},1@{cpus[0]},2@{cpus[1 % len(cpus)]}"
        self.now_ms = int(time.time() * 1000)
        self.load_at_start = os.getloadavg()
        self.data = {}

    def generate(self, fmt, events, tag):
        out = os.path.join(self.tmp, tag)
        cmd = [self.exe["gen"], "--events", str(events), "--seed", "7", "--out", out,
               "--now-ms", str(self.now_ms), "--format", fmt]
        subprocess.run(cmd, check=True, capture_output=True)
        with open(os.path.join(out, "expected", "counters.json")) as f:
            return os.path.join(out, "events.pcap"), json.load(f)

    def config(self, run_dir, extra=""):
        path = os.path.join(run_dir, "sluiced.toml")
        with open(path, "w") as f:
            slots = f"slots = {self.a.slots}\n" if self.a.slots else ""
            f.write("[input]\nmbufs = 16384\n" + slots + extra)
        return path

    def start(self, tag, vdevs, args, data_dir=None, toml_extra=""):
        run_dir = os.path.join(self.tmp, tag)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        sock = os.path.join(run_dir, "ctl.sock")
        prefix = f"e2e-rate-{os.getpid()}-{tag}"
        argv = [self.exe["sluiced"], "--no-huge", "--no-pci", "-m", "2048", "--file-prefix",
                prefix, "--lcores", self.lcores, "--log-level", "*:warning"]
        for v in vdevs:
            argv += ["--vdev", v]
        argv += ["--", "--data-dir", data_dir or os.path.join(run_dir, "data"),
                 "--control-socket", sock, "--workers", "1", "--rx", "1",
                 "--config", self.config(run_dir, toml_extra)] + args
        p = Proc(argv, os.path.join(run_dir, "sluiced.log"))

        def up():
            if not p.alive():
                raise RuntimeError(f"{tag}: sluiced exited at start:\n" + p.tail())
            try:
                return control(sock, "status").get("ok")
            except OSError:
                return False
        if not wait_until(up, 120):
            raise RuntimeError(f"{tag}: sluiced did not come up:\n" + p.tail())
        status = control(sock, "status")
        roles = {}
        for r in status["lcore_map"]["rx"]:
            roles[f"rte-worker-{r['lcore']}"] = "rx"
        for w in status["lcore_map"]["workers"]:
            roles[f"rte-worker-{w['lcore']}"] = "worker"
        return p, sock, run_dir, prefix, roles

    def stop(self, p, sock, prefix):
        try:
            control(sock, "shutdown")
        except OSError:
            pass
        p.wait(120)
        p.close()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)

    @staticmethod
    def done(t):
        return t["events_accepted"] + t["duplicates"] + t["dead_letters"]

    def perf_start(self, p, tag):
        """perf record (software cpu-clock: this VM has no hardware counters) on sluiced."""
        if not self.a.perf:
            return None
        os.makedirs(self.a.perf, exist_ok=True)
        data = os.path.join(self.a.perf, f"{tag}.data")
        return subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000",
                                 "-p", str(p.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), data

    def perf_stop(self, handle, tag):
        if not handle:
            return
        proc, data = handle
        proc.send_signal(2)  # SIGINT: perf writes its file and exits
        proc.wait(60)
        out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort",
                              "comm,dso,sym", "--stdio", "--percent-limit", "0.7"],
                             capture_output=True, text=True)
        with open(os.path.join(self.a.perf, f"{tag}.txt"), "w") as f:
            f.write(out.stdout)
        os.unlink(data)

    def sample(self, p, sock):
        """(time of the stats reply, stats, CPU per thread, {stats call seconds, run-queue
        wait per thread}): the clock is read when the counters have been, not before a
        call that a stalled control thread may answer seconds later."""
        t = time.monotonic()
        st = control(sock, "stats")
        t_reply = time.monotonic()
        return t_reply, st, thread_cpu(p.pid), {"stats_s": t_reply - t, "runq": thread_runq(p.pid)}

    def result(self, name, fmt, s0, s1, roles, count, extra=None):
        (t0, st0, c0, m0), (t1, st1, c1, m1) = s0, s1
        dt = t1 - t0
        n = count(st1) - count(st0)
        cpu = cpu_delta(c0, c1)
        rx_cpu = sum(v for k, v in cpu.items() if roles.get(k) == "rx")
        wk_cpu = sum(v for k, v in cpu.items() if roles.get(k) == "worker")
        total = sum(cpu.values())
        runq = cpu_delta(m0["runq"], m1["runq"])
        stats_s = max(m0["stats_s"], m1["stats_s"])
        r = {"scenario": name, "format": fmt, "seconds": dt, "items": n,
             "items_per_s": n / dt if dt > 0 else None,
             "cpu_s": total, "rx_cpu_s": rx_cpu, "worker_cpu_s": wk_cpu,
             "other_cpu_s": total - rx_cpu - wk_cpu,
             "items_per_rx_core_s": n / rx_cpu if rx_cpu > 0 else None,
             "items_per_worker_core_s": n / wk_cpu if wk_cpu > 0 else None,
             "cpu_s_per_million": total / (n / 1e6) if n else None,
             "rx_dropped": st1["totals"].get("rx_dropped", 0) - st0["totals"].get("rx_dropped", 0),
             # Time the lcores were runnable but not run (the scheduler), and the slower of
             # the two stats calls (> SLOW_STATS_S: sluiced did not answer, a stall).
             "rx_runq_wait_s": sum(v for k, v in runq.items() if roles.get(k) == "rx"),
             "worker_runq_wait_s": sum(v for k, v in runq.items() if roles.get(k) == "worker"),
             "stats_call_s": stats_s, "slow_stats_call": stats_s > SLOW_STATS_S,
             # worker_lcore's stall detector, since sluiced started: its longest idle wait
             # that ended with work in its rings (~1 ms bound; far more: a sleeper not run).
             "worker_slept_with_work_max_us": max(
                 [c.get("idle_slept_with_work_max_us", 0) for c in st1.get("per_core", [])
                  if c.get("role") == "worker"] or [0])}
        if extra:
            r.update(extra)
        if r["slow_stats_call"]:
            log(f"{name} {fmt}: a stats call took {stats_s:.2f} s: this row spans a stall")
        log(f"{name:12s} {fmt:6s} {r['items_per_s'] or 0:12.0f}/s  "
            f"rx {r['items_per_rx_core_s'] or 0:12.0f}/core-s  "
            f"worker {r['items_per_worker_core_s'] or 0:12.0f}/core-s  "
            f"cpu {r['cpu_s_per_million'] or 0:6.2f} s/M")
        return r

    # -- infinite sources: a window after a warm-up
    def windowed(self, name, fmt, vdevs, args, count, toml_extra=""):
        p, sock, run_dir, prefix, roles = self.start(f"{name}-{fmt}", vdevs, args,
                                                     toml_extra=toml_extra)
        try:
            time.sleep(self.a.warmup)
            perf = self.perf_start(p, f"{name}-{fmt}")
            s0 = self.sample(p, sock)
            time.sleep(self.a.window)
            s1 = self.sample(p, sock)
            self.perf_stop(perf, f"{name}-{fmt}")
            return self.result(name, fmt, s0, s1, roles, count)
        finally:
            self.stop(p, sock, prefix)

    def first_activity(self, p, sock, key):
        """The first sample where sluiced has taken something: the clock starts there."""
        s = wait_until(lambda: (lambda smp: smp if smp[1]["totals"][key] > 0 else None)(
            self.sample(p, sock)), self.a.timeout, 0.002)
        if not s:
            raise RuntimeError("sluiced never received anything")
        return s

    # -- read once: until every event of the capture is done
    def once(self, name, fmt, pcap, expected, data_dir=None, toml_extra=""):
        p, sock, run_dir, prefix, roles = self.start(
            f"{name}-{fmt}", [f"net_pcap0,rx_pcap={pcap}"], [], data_dir, toml_extra)
        try:
            perf = self.perf_start(p, f"{name}-{fmt}")
            s0 = self.first_activity(p, sock, "rx_packets")
            want = expected["events_received"]
            wait_until(lambda: self.done(control(sock, "stats")["totals"]) >= want,
                       self.a.timeout, 0.01)
            s1 = self.sample(p, sock)
            self.perf_stop(perf, f"{name}-{fmt}")
            ok = s1[1]["totals"]["events_accepted"] == expected["events_accepted"]
            r = self.result(name, fmt, s0, s1, roles, lambda st: self.done(st["totals"]),
                            {"counts_match_model": ok})
        finally:
            self.stop(p, sock, prefix)
        # Bytes per stored event: the events table's segment files after the shutdown
        # (footers written) over the events accepted (every one is a row of it).
        events_dir = os.path.join(data_dir or os.path.join(run_dir, "data"), "events")
        seg_bytes = sum(os.path.getsize(os.path.join(events_dir, f))
                        for f in os.listdir(events_dir) if f.endswith(".seg"))
        rows = s1[1]["totals"]["events_accepted"]
        r["events_table_bytes"] = seg_bytes
        r["bytes_per_stored_event"] = seg_bytes / rows if rows else None
        log(f"{name:12s} {fmt:6s} events table {seg_bytes:,} B for {rows:,} rows: "
            f"{r['bytes_per_stored_event'] or 0:.2f} B per stored event")
        return r

    def kernel(self, name, fmt, pcap, expected, args):
        port = free_port()
        p, sock, run_dir, prefix, roles = self.start(
            f"{name}-{fmt}", [], ["--kernel-udp", "127.0.0.1", "--udp-port", str(port)] + args)
        try:
            count = (lambda st: st["totals"]["events_received"]) if "--bench-sink" in args \
                else (lambda st: self.done(st["totals"]))
            blast = subprocess.Popen([self.exe["blast"], "--pcap", pcap, "--now-ms",
                                      str(self.now_ms), "--target", f"127.0.0.1:{port}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            perf = self.perf_start(p, f"{name}-{fmt}")
            s0 = self.first_activity(p, sock, "events_received")
            last = {"n": -1, "t": time.monotonic()}

            def settled():
                st = control(sock, "stats")
                n = count(st)
                if n >= expected["events_received"]:
                    return True
                if n != last["n"]:
                    last.update(n=n, t=time.monotonic())
                return time.monotonic() - last["t"] > 1.0
            wait_until(settled, self.a.timeout, 0.01)
            s1 = self.sample(p, sock)
            self.perf_stop(perf, f"{name}-{fmt}")
            out, _ = blast.communicate(timeout=self.a.timeout)
            sent = json.loads(out.strip().splitlines()[-1])
            if count(s1[1]) < expected["events_received"]:
                s1 = (last["t"], *s1[1:])  # the rest was dropped: stop the clock there
            return self.result(name, fmt, s0, s1, roles, count,
                               {"sender_cpu_s": sent["cpu_s"], "sender_seconds": sent["seconds"],
                                "lost": expected["events_received"] - count(s1[1])})
        finally:
            self.stop(p, sock, prefix)

    def run(self):
        results = []
        events_rx = lambda st: st["totals"]["events_received"]  # noqa: E731
        frames_rx = lambda st: st["totals"]["rx_packets"]  # noqa: E731
        done = lambda st: self.done(st["totals"])  # noqa: E731
        only = set(filter(None, self.a.only.split(",")))
        want = lambda name: not only or name in only  # noqa: E731
        gens = {}
        for fmt in self.a.formats.split(","):
            gens[fmt] = (self.generate(fmt, self.a.inf_events, f"gen-small-{fmt}")[0],
                         *self.generate(fmt, self.a.events, f"gen-big-{fmt}"))
        for rep in range(self.a.reps):
            first = len(results)
            if want("null"):
                results.append(self.windowed("null", "-", ["net_null0"], [], frames_rx))
            for fmt in self.a.formats.split(","):
                small, big, exp = gens[fmt]
                inf = [f"net_pcap0,rx_pcap={small},infinite_rx=1"]
                if want("inf-sink"):
                    results.append(self.windowed("inf-sink", fmt, inf, ["--bench-sink"],
                                                 events_rx))
                if want("inf-dedup"):
                    results.append(self.windowed("inf-dedup", fmt, inf, [], done))
                if want("once-disk"):
                    results.append(self.once("once-disk", fmt, big, exp))
                if want("once-tmpfs"):
                    shm = tempfile.mkdtemp(prefix="sluice-e2e-rate-", dir="/dev/shm")
                    try:
                        results.append(self.once("once-tmpfs", fmt, big, exp,
                                                 os.path.join(shm, "d"),
                                                 "[storage]\ndirect_io = false\n"))
                    finally:
                        shutil.rmtree(shm, ignore_errors=True)
                if want("kernel-sink"):
                    results.append(self.kernel("kernel-sink", fmt, big, exp, ["--bench-sink"]))
                if want("kernel-full"):
                    results.append(self.kernel("kernel-full", fmt, big, exp, []))
            for r in results[first:]:
                r["rep"] = rep
        return results


def summary(results):
    """Markdown: per scenario and format, the median over repetitions [min - max]."""
    import statistics
    groups = {}
    for r in results:
        groups.setdefault((r["scenario"], r["format"]), []).append(r)

    def cell(rs, key, scale=1e6, digits=2):
        v = [r[key] for r in rs if r.get(key) is not None]
        if not v:
            return "-"
        med = statistics.median(v) / scale
        if len(v) == 1:
            return f"{med:.{digits}f}"
        return f"{med:.{digits}f} [{min(v) / scale:.{digits}f}-{max(v) / scale:.{digits}f}]"

    lines = ["| scenario | format | reps | M items/s (wall) | M items per RX core-s | "
             "M items per worker core-s | CPU s per M items |",
             "|---|---|---|---|---|---|---|"]
    for (sc, fmt), rs in groups.items():
        slow = sum(1 for r in rs if r.get("slow_stats_call"))
        reps = f"{len(rs)} ({slow} across a stall)" if slow else f"{len(rs)}"
        lines.append(f"| {sc} | {fmt} | {reps} | {cell(rs, 'items_per_s')} | "
                     f"{cell(rs, 'items_per_rx_core_s')} | {cell(rs, 'items_per_worker_core_s')} | "
                     f"{cell(rs, 'cpu_s_per_million', 1, 2)} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--events", type=int, default=300000, help="events in the read-once capture")
    ap.add_argument("--inf-events", type=int, default=20000,
                    help="events in the infinite_rx capture (held in mbufs)")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--out", default="")
    ap.add_argument("--slots", type=int, default=0, help="input.slots (0: sluiced's default)")
    ap.add_argument("--only", default="", help="comma-separated scenarios to run (default all)")
    ap.add_argument("--formats", default="json,binary")
    ap.add_argument("--perf", default="",
                    help="also perf-record sluiced in each scenario; flat reports go to DIR")
    a = ap.parse_args()
    r = Runner(a)
    try:
        results = r.run()
    finally:
        shutil.rmtree(r.tmp, ignore_errors=True)
    meta = {"nproc": os.cpu_count(), "cpu": platform.processor() or "",
            "kernel": platform.release(), "lcores": r.lcores,
            "load_avg_at_end": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            meta["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    meta["load_avg_at_start"] = r.load_at_start
    doc = {"meta": meta, "results": results, "summary_md": summary(results)}
    text = json.dumps(doc, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(doc["summary_md"])


if __name__ == "__main__":
    main()

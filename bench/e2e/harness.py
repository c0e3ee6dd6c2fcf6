#!/usr/bin/python3
"""sluice's end-to-end benchmark harness (run it through scripts/bench).

One run measures, interleaved and repeated on the same events:
  sluice over DPDK (net_pcap) and over its kernel UDP mode, each with the events as NDJSON
  and as sluice's binary batches (docs/BINARY.md), the recvmmsg floor, and the peers
  VictoriaMetrics and InfluxDB 1.x fed the same events as line protocol over UDP and HTTP,
  ClickHouse (MergeTree and ReplacingMergeTree) as JSONEachRow over HTTP and NATS
  JetStream (file storage, Nats-Msg-Id dedup) as acknowledged publishes;
sluice's Kafka listener fed the same events as record values by librdkafka (kcat), with
batches of up to 1 MB (batch.size, linger.ms), compression none and lz4, acks 1 and all;
then latency at 10/50/90 % of the kernel path's measured rate (sluice-blast, paced) and of
the DPDK path's (sluice-gen over net_memif, paced), the Kafka produce-ack
latency at 10/50/90 % of the Kafka rows' measured rate (a paced confluent-kafka producer),
scaling over worker counts, and the stage microbenchmarks. It writes results.json;
report.py renders it.

Standard library only (it runs under Debian's /usr/bin/python3).
"""
import argparse
import csv
import datetime
import io
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    """A port free for both UDP and TCP on loopback right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free loopback port")


def proc_cpu_s(pid):
    """CPU seconds (user + system, all threads) a live process has used."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


class Proc:
    """A child process with its log file; killed on close() if still running."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self, sig=signal.SIGTERM, timeout=30):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()

    def tail(self, n=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def control(sock_path, cmd, timeout=5.0, **args):
    req = dict(v=1, cmd=cmd, **args)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def http_get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def http_post(url, data=b"", timeout=60):
    req = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_until(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


class Hammer:
    """`clients` threads, each on its own connection, asking `stats` back to back: the
    control-plane load of many scripts and dashboards at once."""

    def __init__(self, sock_path, clients):
        self.stopping = threading.Event()
        self.counts = {"ok": 0, "error": 0, "failed": 0}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(sock_path,), daemon=True)
                        for _ in range(clients)]
        for t in self.threads:
            t.start()

    def client(self, sock_path):
        req = (json.dumps({"v": 1, "cmd": "stats"}) + "\n").encode()
        while not self.stopping.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(5)
                    s.connect(sock_path)
                    f = s.makefile("rb")
                    while not self.stopping.is_set():
                        s.sendall(req)
                        line = f.readline()
                        if not line:
                            break
                        key = "ok" if json.loads(line).get("ok") else "error"
                        with self.lock:
                            self.counts[key] += 1
            except (OSError, ValueError):
                with self.lock:
                    self.counts["failed"] += 1
                time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)
        return dict(self.counts)


class Harness:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.tmp = tempfile.mkdtemp(prefix="sluice-bench-", dir=args.tmp_dir)
        self.cpus = sorted(os.sched_getaffinity(0))
        self.results = {"runs": [], "latency": [], "scaling": [], "notes": []}
        self.exe = {
            "sluiced": f"{self.build}/control/sluiced",
            "sluicectl": f"{self.build}/control/sluicectl",
            "sluice_gen": f"{self.build}/tools/sluice-gen",
            "sluice_read": f"{self.build}/storage/sluice-read",
            "blast": f"{self.build}/bench/sluice-blast",
            "floor": f"{self.build}/bench/recvmmsg-floor",
        }
        for name, path in self.exe.items():
            if not os.access(path, os.X_OK):
                sys.exit(f"bench: {path} is missing (build first: scripts/bootstrap {args.build} "
                         "-Dbuildtype=release)")

    # ---------------------------------------------------------------- dataset
    def gen_args(self, out_dir):
        """The dataset's sluice-gen arguments: the DPDK latency runs regenerate the same
        frames with them."""
        return ["--events", str(self.a.events), "--seed", str(self.a.seed), "--out", out_dir,
                "--now-ms", str(self.now_ms)]

    def make_dataset(self):
        d = os.path.join(self.tmp, "dataset")
        self.now_ms = int(time.time() * 1000)
        log(f"generating {self.a.events:,} events (sluice-gen, seed {self.a.seed})")
        subprocess.run([self.exe["sluice_gen"]] + self.gen_args(d), check=True,
                       stdout=subprocess.DEVNULL)
        self.dataset = d
        self.pcap = os.path.join(d, "events.pcap")
        with open(os.path.join(d, "expected", "counters.json")) as f:
            self.expected = json.load(f)
        self.ds = {"json": {"pcap": self.pcap, "expected": self.expected}}
        self.make_binary_dataset(d)
        self.make_ndjson(d)
        self.expected_windows = {}
        with open(os.path.join(d, "expected", "windows.csv"), newline="") as f:
            for row in csv.DictReader(f):
                self.expected_windows[(int(row["window_start_ms"]), row["page"])] = \
                    int(row["count"])
        self.results["dataset"] = {
            "events": self.a.events,
            "seed": self.a.seed,
            "datagrams": self.expected.get("datagrams"),
            "frames": self.expected.get("rx_packets"),
            "pcap_bytes": os.path.getsize(self.pcap),
            "expected": {k: self.expected.get(k) for k in (
                "events_received", "events_accepted", "duplicates", "late_events",
                "dead_letters")},
            "window_rows": len(self.expected_windows),
            "binary": self.ds["binary"]["summary"],
            "cardinality": self.cardinality(),
        }
        # Each throughput run's per-minute-by-page result (by id of its row), kept out of
        # results.json: the binary runs must reproduce the JSON run's result exactly.
        self.run_windows = {}

    def cardinality(self):
        """What a store indexes: distinct pages, (page, event_type) series, identities among
        the events sluice parses as valid."""
        rows = self.peer_rows()
        return {k: rows.get(k) for k in ("events", "distinct_ids", "pages", "series")}

    def make_ndjson(self, d):
        """The capture's events one per line: each line is one Kafka record value, exactly
        the event sluice's UDP RX splits out of the same datagram."""
        path = os.path.join(d, "events.ndjson")
        out = subprocess.run([self.exe["blast"], "--pcap", self.pcap, "--write-ndjson", path],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"sluice-blast --write-ndjson failed: {out.stderr.strip()}")
        lines = json.loads(out.stdout.strip().splitlines()[-1])["events"]
        if lines != self.expected["events_received"]:
            self.results["notes"].append(
                f"Kafka dataset: {lines:,} NDJSON lines != {self.expected['events_received']:,} "
                "events the capture carries: the Kafka rows' expected counters are off")
        self.ndjson = path

    def make_binary_dataset(self, d):
        """The same events as binary batches: sluice-blast converts every NDJSON line that
        passes sluice's RX checks into a record (bench/e2e/workload.h) and writes them as a
        capture. Lines sluice dead-letters at RX have no binary form and are left out; they
        never move the max event time, so the binary stream's accepted events, duplicates,
        late events, beyond-horizon dead letters and windows are the JSON stream's
        (tests/bench/workload_test.cpp checks this against the reference model)."""
        pcap = os.path.join(d, "events-binary.pcap")
        log("converting the events to binary batches (sluice-blast --format binary)")
        out = subprocess.run([self.exe["blast"], "--pcap", self.pcap, "--now-ms",
                              str(self.now_ms), "--format", "binary", "--write-pcap", pcap],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"sluice-blast --write-pcap failed: {out.stderr.strip()}")
        w = json.loads(out.stdout.strip().splitlines()[-1])
        j = self.expected
        by = j.get("dead_letters_by_reason", {})
        horizon = by.get("beyond_dedup_horizon", 0)
        expected = {
            "rx_packets": w["frames"], "datagrams": w["datagrams"],
            "events_received": w["events"], "events_accepted": j["events_accepted"],
            "duplicates": j["duplicates"], "late_events": j["late_events"],
            "dead_letters": horizon,
        }
        rx_dead = j["dead_letters"] - horizon
        if w["events"] + w["not_representable"] != j["events_received"] or \
                w["not_representable"] != rx_dead:
            self.results["notes"].append(
                f"binary conversion: {w['events']:,} records + {w['not_representable']:,} "
                f"lines left out != {j['events_received']:,} JSON events (or != "
                f"{rx_dead:,} RX dead letters): the binary runs' expected counters are off")
        self.ds["binary"] = {"pcap": pcap, "expected": expected, "summary": {
            "events": w["events"], "left_out": w["not_representable"],
            "datagrams": w["datagrams"], "frames": w["frames"],
            "pcap_bytes": os.path.getsize(pcap),
            "expected": {k: expected[k] for k in (
                "events_received", "events_accepted", "duplicates", "late_events",
                "dead_letters")}}}

    # ---------------------------------------------------------------- sluice
    def lcore_map(self, workers, rx=1):
        """Main and RX lcores share the first CPU; workers go round robin over the others."""
        cpus = self.cpus
        others = cpus[1:] or cpus[:1]
        m = [f"0@{cpus[0]}"] + [f"{1 + r}@{cpus[0]}" for r in range(rx)]
        for w in range(workers):
            m.append(f"{1 + rx + w}@{others[w % len(others)]}")
        return ",".join(m)

    def start_sluiced(self, tag, workers, extra_eal, sluice_args):
        run_dir = os.path.join(self.tmp, tag)
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        sock = os.path.join(run_dir, "ctl.sock")
        argv = [self.exe["sluiced"], "--no-huge", "--no-pci", "-m", "1024", "--file-prefix",
                f"bench-{os.getpid()}-{tag}", "--lcores", self.lcore_map(workers), "--log-level",
                "*:warning"] + extra_eal + ["--", "--data-dir", os.path.join(run_dir, "data"),
                                             "--control-socket", sock, "--workers",
                                             str(workers)] + sluice_args
        if self.a.sluiced_config:  # e.g. [lcores] idle = "poll" for an A/B
            argv += ["--config", os.path.abspath(self.a.sluiced_config)]
        p = Proc(argv, os.path.join(run_dir, "sluiced.log"))
        return p, sock, run_dir

    def wait_up(self, p, sock):
        # sluiced prints where its control socket is once it is up; asking before that
        # can crash it (daemon::status() reads the server pointer before it is set).
        def announced():
            if not p.alive():
                raise RuntimeError("sluiced exited at start:\n" + p.tail())
            with open(p.log_path, errors="replace") as f:
                return "sluiced: control socket" in f.read()
        if not wait_until(announced, 60):
            raise RuntimeError("sluiced did not announce its control socket:\n" + p.tail())

        def up():
            if not p.alive():
                raise RuntimeError("sluiced exited at start:\n" + p.tail())
            try:
                return control(sock, "status").get("ok")
            except (OSError, ValueError):  # no socket yet, or closed without a reply
                return False
        if not wait_until(up, 60):
            raise RuntimeError("sluiced did not come up:\n" + p.tail())

    @staticmethod
    def done_events(t):
        return t["events_accepted"] + t["duplicates"] + t["dead_letters"]

    def finish_sluiced(self, p, sock, run_dir, r, fmt="json"):
        """Shutdown, then bytes on disk and the per-minute-by-page query from the store."""
        try:
            control(sock, "shutdown")
        except OSError:
            pass
        rc = p.wait(120)
        p.close()
        r["exit_code"] = rc
        data = os.path.join(run_dir, "data")
        r["bytes_on_disk"] = du_bytes(data)
        t0 = time.monotonic()
        out = subprocess.run([self.exe["sluice_read"], data, "page_views_per_minute",
                              "--format", "csv"], capture_output=True, text=True)
        r["query_s"] = time.monotonic() - t0
        got, revision = {}, {}
        for row in csv.DictReader(io.StringIO(out.stdout)):
            # A window rewritten later (a higher `revision`) replaces the earlier row.
            key, rev = (int(row["window_start_ms"]), row["page"]), int(row.get("revision") or 0)
            if rev >= revision.get(key, -1):
                got[key], revision[key] = int(row["count"]), rev
        r["query_rows"] = len(got)
        r["query_correct"] = self.window_agreement(got)
        if out.returncode == 0:
            self.run_windows[id(r)] = got
        accepted = r.get("events_stored") or 0
        r["bytes_per_event"] = r["bytes_on_disk"] / accepted if accepted else None

    def window_agreement(self, got):
        """Fraction of sluice-gen's expected (minute, page) counts reproduced exactly."""
        want = self.expected_windows
        if not want:
            return None
        same = sum(1 for k, v in want.items() if got.get(k) == v)
        return same / len(want)

    @staticmethod
    def system_name(base, fmt):
        return base if fmt == "json" else f"{base}_{fmt}"

    def run_sluice_dpdk(self, workers=None, tag=None, clients=0, fmt="json"):
        workers = workers or self.a.workers
        tag = tag or self.system_name("sluice_dpdk", fmt)
        ds = self.ds[fmt]
        p, sock, run_dir = self.start_sluiced(
            tag, workers, ["--vdev", f"net_pcap0,rx_pcap={ds['pcap']}"], [])
        r = {"system": self.system_name("sluice_dpdk", fmt), "format": fmt,
             "transport": "DPDK net_pcap (rx_pcap, read once)", "workers": workers}
        hammer = None
        try:
            self.wait_up(p, sock)
            if clients:
                hammer = Hammer(sock, clients)
            t0, cpu0 = time.monotonic(), proc_cpu_s(p.pid)
            want = ds["expected"]["events_received"]
            frames = ds["expected"]["rx_packets"]

            def done():
                reply = control(sock, "stats")
                if not reply.get("ok"):
                    return None  # rate limited while the clients hammer it: ask again
                t = reply["totals"]
                return t if t["rx_packets"] >= frames and self.done_events(t) >= want else None
            t = wait_until(done, self.a.timeout, 0.01)
            t1, cpu1 = time.monotonic(), proc_cpu_s(p.pid)
            if hammer:
                r["control_replies"] = hammer.stop()
                hammer = None
            if not t:
                raise RuntimeError("sluiced did not process the capture in time")
            self.fill_sluice(r, t, t1 - t0, cpu1 - cpu0, want, ds["expected"])
            self.finish_sluiced(p, sock, run_dir, r, fmt)
        finally:
            if hammer:
                hammer.stop()
            p.close()
        return r

    def run_sluice_memif(self, pps, tag, workers=None):
        """sluiced's DPDK path fed live and paced: sluice-gen in its own process replays the
        dataset's capture over a net_memif link at `pps` frames per second (net_pcap reads
        a file unpaced). Replaying, not regenerating: generating each frame as it is sent
        held sluice-gen below the 90% rows' rate on 2 cores."""
        workers = workers or self.a.workers
        sock_name = f"sluice-bench-{os.getpid()}-{tag}"
        p, sock, run_dir = self.start_sluiced(
            tag, workers, ["--vdev", f"net_memif0,role=server,id=0,socket={sock_name}"], [])
        r = {"system": "sluice_dpdk_memif", "format": "json",
             "transport": "DPDK net_memif from sluice-gen --replay (paced)", "workers": workers}
        gen = None
        try:
            self.wait_up(p, sock)
            gen_log = os.path.join(run_dir, "gen.log")
            gen = Proc([self.exe["sluice_gen"], "--replay", self.pcap, "--memif", sock_name,
                        "--pps", str(pps), "--linger-s", str(int(self.a.timeout) + 60)],
                       gen_log)

            def sending():
                if not gen.alive():
                    raise RuntimeError("sluice-gen --memif exited:\n" + gen.tail())
                with open(gen_log, errors="replace") as f:
                    return "sending over memif" in f.read()
            if not wait_until(sending, self.a.timeout, 0.01):
                raise RuntimeError("sluice-gen never linked over memif:\n" + gen.tail())
            t0, cpu0 = time.monotonic(), proc_cpu_s(p.pid)
            want = self.expected["events_received"]
            frames = self.expected["rx_packets"]

            def done():
                t = control(sock, "stats")["totals"]
                return t if t["rx_packets"] >= frames and self.done_events(t) >= want else None
            t = wait_until(done, self.a.timeout, 0.01)
            t1, cpu1 = time.monotonic(), proc_cpu_s(p.pid)
            if not t:
                raise RuntimeError("sluiced did not receive every memif frame in time")
            self.fill_sluice(r, t, t1 - t0, cpu1 - cpu0, want, self.expected)
            r["offered_pps"] = pps
            time.sleep(0.5)  # past a group commit, so the last rows' durable latency counts
            r["stats"] = control(sock, "stats")
            gen.close()  # SIGTERM ends its linger
            gen = None
            self.finish_sluiced(p, sock, run_dir, r)
        finally:
            if gen:
                gen.close()
            p.close()
        return r

    def fill_sluice(self, r, t, seconds, cpu_s, sent, expected):
        r.update({
            "events_sent": sent,
            "events_received": t["events_received"],
            "events_stored": t["events_accepted"],
            "seconds": seconds,
            "server_cpu_s": cpu_s,
            "loss": sent - t["events_received"],
            "rx_dropped": t.get("rx_dropped"),
            "correct_counters": all(t[k] == expected[k] for k in (
                "events_accepted", "duplicates", "late_events", "dead_letters")),
        })

    def blast(self, args, log_name, pcap=None):
        out = subprocess.run([self.exe["blast"], "--pcap", pcap or self.pcap, "--now-ms",
                              str(self.now_ms)] + args, capture_output=True, text=True)
        with open(os.path.join(self.tmp, log_name), "a") as f:
            f.write(out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"sluice-blast failed: {out.stderr.strip()}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def run_sluice_kernel(self, pps=0, workers=None, tag=None, fmt="json"):
        workers = workers or self.a.workers
        tag = tag or self.system_name("sluice_kernel", fmt)
        ds = self.ds[fmt]
        port = free_port()
        p, sock, run_dir = self.start_sluiced(
            tag, workers, [], ["--kernel-udp", "127.0.0.1", "--udp-port", str(port)])
        r = {"system": self.system_name("sluice_kernel", fmt), "format": fmt,
             "transport": "kernel UDP (io_uring) from loopback", "workers": workers}
        try:
            self.wait_up(p, sock)
            cpu0 = proc_cpu_s(p.pid)
            t0 = time.monotonic()
            sent = self.blast(["--target", f"127.0.0.1:{port}", "--pps", str(pps)], "blast.log",
                              pcap=ds["pcap"])
            t0 += sent.get("setup_s", 0)  # loading the capture is not sluice's time
            want = ds["expected"]["events_received"]
            last = {"n": -1, "t": time.monotonic()}

            def settled():
                t = control(sock, "stats")["totals"]
                n = self.done_events(t)
                if n >= want:
                    return t
                if n != last["n"]:
                    last.update(n=n, t=time.monotonic())
                elif time.monotonic() - last["t"] > 1.0:
                    return t  # nothing more is coming: the rest was lost
                return None
            t = wait_until(settled, self.a.timeout, 0.01)
            t1, cpu1 = (last["t"] if self.done_events(t) < want else time.monotonic(),
                        proc_cpu_s(p.pid))
            self.fill_sluice(r, t, t1 - t0, cpu1 - cpu0, want, ds["expected"])
            r["sender_cpu_s"] = sent["cpu_s"]
            r["offered_pps"] = pps
            time.sleep(0.5)  # past a group commit, so the last rows' durable latency counts
            r["stats"] = control(sock, "stats")
            self.finish_sluiced(p, sock, run_dir, r, fmt)
        finally:
            p.close()
        return r

    # ---------------------------------------------------------------- Kafka
    # librdkafka's producer settings for every Kafka row: batches of up to 1 MB (the
    # broker default message.max.bytes), filled for up to 5 ms, everything to partition 0
    # (one partition keeps the capture's order, so the outcome is the UDP rows'). At most 5
    # requests in flight, as idempotent and Java producers have it: with librdkafka's
    # default (1,000,000) a paused connection overruns the listener's slack and is closed
    # (docs/benchmarks.md, Kafka rows).
    KAFKA_BATCH = {"batch.size": 1000000, "linger.ms": 5,
                   "max.in.flight.requests.per.connection": 5,
                   "queue.buffering.max.messages": 2000000,
                   "queue.buffering.max.kbytes": 2097151}

    KAFKA_PRODUCER = r"""
import json, resource, sys, time
from confluent_kafka import Producer
port, path, acks, codec, rate, limit = sys.argv[1:7]
rate, limit = float(rate), int(limit)
conf = json.loads(sys.argv[7])
conf.update({'bootstrap.servers': '127.0.0.1:' + port, 'acks': acks,
             'compression.type': codec})
values = open(path, 'rb').read().split(b'\n')[:-1]
if limit:
    values = values[:limit]
p = Producer(conf)
failed = [0]
def report(err, msg):
    if err is not None:
        failed[0] += 1
t0 = time.monotonic()
for i, v in enumerate(values):
    if rate and i % 16 == 0:
        ahead = t0 + i / rate - time.monotonic()
        if ahead > 0.0005:
            time.sleep(ahead)
    while True:
        try:
            p.produce('events-topic', v, partition=0, on_delivery=report)
            break
        except BufferError:
            p.poll(0.001)
    if i % 1000 == 0:
        p.poll(0)
left = p.flush(120)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'sent': len(values), 'failed': failed[0], 'undelivered': left,
                  'seconds': time.monotonic() - t0, 'cpu_s': ru.ru_utime + ru.ru_stime}))
"""

    def kafka_producer_argv(self, port, acks, codec, pps, limit):
        """The paced producer (confluent-kafka, librdkafka underneath)."""
        script = os.path.join(self.tmp, "kafka_producer.py")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(self.KAFKA_PRODUCER)
        return ["/usr/bin/python3", script, str(port), self.ndjson, acks, codec, str(pps),
                str(limit), json.dumps(self.KAFKA_BATCH)]

    def kcat_argv(self, port, acks, codec, idempotent=False):
        """The unpaced producer: kcat (librdkafka's own C client), one record per line."""
        argv = ["kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", "events-topic", "-p", "0",
                "-z", codec, "-X", f"acks={acks}"]
        if idempotent:  # InitProducerId, sequences checked and journaled (docs/KAFKA.md)
            argv += ["-X", "enable.idempotence=true"]
        for k, v in self.KAFKA_BATCH.items():
            argv += ["-X", f"{k}={v}"]
        return argv

    def run_sluice_kafka(self, acks="1", codec="none", pps=0, limit=0, tag=None,
                         idempotent=False):
        """Kafka produce into sluiced: its own Kafka RX lcore where the UDP rows have their
        RX lcore, the same workers. Unpaced rows use kcat; paced ones the confluent-kafka
        producer above. The clock runs from the producer's start until the workers have
        handled every event, as for the kernel UDP rows."""
        workers = self.a.workers
        name = f"sluice_kafka_acks{acks}_{codec}" + ("_idem" if idempotent else "")
        tag = tag or name
        port = free_port()
        p, sock, run_dir = self.start_sluiced(tag, workers, [],
                                              ["--kafka", f"127.0.0.1:{port}"])
        r = {"system": name, "format": "json", "acks": acks, "compression": codec,
             "transport": "Kafka produce (TCP, io_uring) from loopback", "workers": workers,
             "producer": "kcat " + " ".join(self.kcat_argv(port, acks, codec, idempotent)[1:])
             if not pps else "confluent-kafka (paced)",
             "flush_interval_ms": 100}
        want = limit or self.expected["events_received"]
        try:
            self.wait_up(p, sock)
            cpu0 = proc_cpu_s(p.pid)
            child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            log_path = os.path.join(run_dir, "producer.log")
            with open(log_path, "w") as log_f:
                if pps:
                    prod = subprocess.run(self.kafka_producer_argv(port, acks, codec, pps, limit),
                                          stdout=subprocess.PIPE, stderr=log_f, text=True,
                                          timeout=self.a.timeout)
                else:
                    with open(self.ndjson, "rb") as inp:
                        prod = subprocess.run(self.kcat_argv(port, acks, codec, idempotent),
                                              stdin=inp,
                                              stdout=log_f, stderr=log_f, timeout=self.a.timeout)
            child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if prod.returncode != 0:
                raise RuntimeError(f"producer exited with {prod.returncode}; see {log_path}")
            if pps:
                r["producer_report"] = json.loads(prod.stdout.strip().splitlines()[-1])
            last = {"n": -1, "t": time.monotonic()}

            def settled():
                reply = control(sock, "stats")
                if not reply.get("ok"):
                    return None
                t = reply["totals"]
                n = self.done_events(t)
                if n >= want:
                    return t
                if n != last["n"]:
                    last.update(n=n, t=time.monotonic())
                elif time.monotonic() - last["t"] > 2.0:
                    return t  # nothing more is coming
                return None
            t = wait_until(settled, self.a.timeout, 0.01)
            t1, cpu1 = (last["t"] if self.done_events(t) < want else time.monotonic(),
                        proc_cpu_s(p.pid))
            if limit:
                r.update({"events_sent": want, "events_received": t["events_received"],
                          "seconds": t1 - t0, "server_cpu_s": cpu1 - cpu0,
                          "loss": want - t["events_received"]})
            else:
                self.fill_sluice(r, t, t1 - t0, cpu1 - cpu0, want, self.expected)
            r["sender_cpu_s"] = (child1.ru_utime + child1.ru_stime) - \
                (child0.ru_utime + child0.ru_stime)
            stats = control(sock, "stats")
            if stats.get("ok"):
                k = stats.get("kafka") or {}
                produce = (k.get("requests_by_api") or {}).get("produce", 0)
                r["kafka"] = {key: k.get(key) for key in (
                    "requests", "requests_by_api", "produce_by_acks", "records", "bytes_in",
                    "errors_by_code", "backpressure", "connections_paused",
                    "sequences_journaled", "duplicate_sequences")}
                r["kafka"]["bytes_per_produce"] = k.get("bytes_in", 0) / produce if produce \
                    else None
                mode = "all" if acks == "all" else acks
                r["ack_latency"] = self.ack_percentiles((k.get("ack_latency") or {}).get(mode))
            if limit:
                p.close()
            else:
                self.finish_sluiced(p, sock, run_dir, r)
        finally:
            p.close()
        return r

    @staticmethod
    def ack_percentiles(h):
        if not h or not h.get("count"):
            return None
        return {"p50": h["p50_us"], "p99": h["p99_us"], "p999": h["p999_us"],
                "max": h["max_us"], "count": h["count"], "unit": "us"}

    def kafka_latency(self):
        """Produce-ack latency at 10/50/90 % of the Kafka rows' measured rate (acks 1 and
        all, no compression), from sluiced's own stats.kafka.ack_latency."""
        for acks in ("1", "all"):
            name = f"sluice_kafka_acks{acks}_none"
            runs = [r for r in self.results["runs"] if r.get("system") == name
                    and "error" not in r and r.get("seconds")]
            if not runs:
                self.results["notes"].append(f"Kafka latency runs for acks={acks} skipped: "
                                             f"no {name} rate measured")
                continue
            rate = statistics.median(r["events_received"] / r["seconds"] for r in runs)
            for pct in (10, 50, 90):
                eps = max(1, int(rate * pct / 100))
                # About 4 s of sending at each load (at least 20,000 events).
                limit = min(self.expected["events_received"], max(20000, eps * 4))
                log(f"Kafka ack latency, acks={acks}, {pct}% of {int(rate):,} events/s "
                    f"({eps:,}/s, {limit:,} events)")
                try:
                    r = self.run_sluice_kafka(acks=acks, pps=eps, limit=limit,
                                              tag=f"kafka-lat-{acks}-{pct}")
                    row = {"acks": acks, "load_pct": pct, "offered_eps": eps, "events": limit,
                           "events_per_s": r["events_received"] / r["seconds"],
                           "loss": r["loss"], "latency": r.get("ack_latency"),
                           "bytes_per_produce": (r.get("kafka") or {}).get("bytes_per_produce"),
                           "producer": r.get("producer_report"),
                           "flush_interval_ms": r["flush_interval_ms"]}
                except Exception as e:
                    row = {"acks": acks, "load_pct": pct, "offered_eps": eps,
                           "error": str(e)[-2000:]}
                self.results.setdefault("kafka_latency", []).append(row)
                self.save()

    # ---------------------------------------------------------------- floor
    def run_floor(self):
        port = free_port()
        p = Proc([self.exe["floor"], "--port", str(port), "--expect",
                  str(self.expected["datagrams"]), "--idle-ms", "1000"],
                 os.path.join(self.tmp, "floor.log"))
        r = {"system": "recvmmsg_floor", "transport": "kernel UDP recvmmsg, counting only"}
        try:
            wait_until(lambda: "listening" in open(p.log_path).read(), 10)
            sent = self.blast(["--target", f"127.0.0.1:{port}"], "blast.log")
            p.wait(self.a.timeout)
            out = [json.loads(l) for l in open(p.log_path) if l.startswith("{")][-1]
            r.update({
                "events_sent": self.expected["events_received"],
                "events_received": out["events"],
                "seconds": out["seconds"],
                "server_cpu_s": out["cpu_s"],
                "sender_cpu_s": sent["cpu_s"],
                "loss": self.expected["events_received"] - out["events"],
                "bytes_on_disk": 0, "bytes_per_event": None, "query_s": None,
                "query_correct": None,
                "na": {"bytes_per_event": "stores nothing", "query": "keeps no data"},
            })
        finally:
            p.close()
        return r

    # ---------------------------------------------------------------- peers
    VM_BATCH_LINES = 5000  # lines per POST to VictoriaMetrics (its docs: thousands)

    def peer_rows(self):
        """The events sluice parses as valid, as ClickHouse JSONEachRow rows and as NATS
        messages keyed by sluice's identity (sluice-blast --write-rows/--write-msgs), made
        once per dataset; the summary has the row count, distinct identities, pages and
        series."""
        if not hasattr(self, "_peer_rows"):
            rows = os.path.join(self.dataset, "rows.jsonl")
            msgs = os.path.join(self.dataset, "msgs.txt")
            out = subprocess.run([self.exe["blast"], "--pcap", self.pcap, "--now-ms",
                                  str(self.now_ms), "--write-rows", rows, "--write-msgs", msgs],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"sluice-blast --write-rows failed: {out.stderr.strip()}")
            self._peer_rows = dict(json.loads(out.stdout.strip().splitlines()[-1]),
                                   rows=rows, msgs=msgs)
        return self._peer_rows

    @staticmethod
    def background_cpu(r, p, cpu1, seconds=1.0):
        """The server's CPU in the `seconds` after the measured interval, before the harness
        asks anything: work the peer defers (part merges, flushes), reported beside the
        table, not in it."""
        time.sleep(seconds)
        cpu = proc_cpu_s(p.pid)
        r["background_cpu_s"] = cpu - cpu1 if cpu is not None and cpu1 is not None else None
        r["background_s"] = seconds

    def http_connections(self):
        """Concurrent HTTP writers for the peers that take them (VictoriaMetrics, InfluxDB
        and ClickHouse all advise several at once to use the server's cores): one per CPU,
        at least 2, at most 8."""
        return min(8, max(2, len(self.cpus)))

    @staticmethod
    def vm_inserted(base):
        """VictoriaMetrics' own count of line-protocol rows it has taken in (one per numeric
        field): a read of /metrics, cheap, unlike a query over the data."""
        for line in http_get(base + "/metrics", 10).decode().splitlines():
            if line.startswith('vm_rows_inserted_total{type="influx"}'):
                return int(float(line.split()[-1]))
        return 0

    def run_victoriametrics(self, transport):
        """VictoriaMetrics fed as its docs advise: HTTP /write with 5,000-line POSTs over
        several connections at once (or UDP datagrams). The clock and the CPU run from the
        first send until its own insert counter stops moving (HTTP: until the last POST is
        answered) plus one forced flush of its in-memory buffers to a searchable part; the
        count and the query come after, outside the measured interval (polling them during
        the run would bill VictoriaMetrics for the harness's queries)."""
        d = os.path.join(self.tmp, f"vm-{transport}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        http_port, influx_port = free_port(), free_port()
        p = Proc(["victoria-metrics", f"-storageDataPath={d}/data", "-retentionPeriod=100y",
                  f"-httpListenAddr=127.0.0.1:{http_port}",
                  f"-influxListenAddr=127.0.0.1:{influx_port}", "-loggerLevel=ERROR",
                  "-search.disableCache", "-search.latencyOffset=0s"],
                 os.path.join(d, "vm.log"))
        base = f"http://127.0.0.1:{http_port}"
        conns = self.http_connections()
        r = {"system": "victoriametrics_" + transport,
             "transport": f"InfluxDB line protocol over {transport.upper()}" +
             (f", {self.VM_BATCH_LINES:,}-line POSTs on {conns} connections"
              if transport == "http" else "")}
        try:
            def health():
                try:
                    return http_get(base + "/health", 2) == b"OK"
                except OSError:
                    return False
            if not wait_until(health, 60, 0.1):
                raise RuntimeError("victoria-metrics did not start:\n" + p.tail())
            cpu0 = proc_cpu_s(p.pid)
            t0 = time.monotonic()
            if transport == "udp":
                sent = self.blast(["--format", "lp", "--target", f"127.0.0.1:{influx_port}"],
                                  "blast.log")
            else:
                sent = self.blast(["--http", base + "/write", "--connections", str(conns),
                                   "--batch-lines", str(self.VM_BATCH_LINES)], "blast.log")
            t0 += sent.get("setup_s", 0)  # converting to line protocol is not the peer's time
            points = sent["events"]
            if transport == "http":
                t1 = time.monotonic()  # every POST answered: every row taken in
            else:
                last = {"n": -1, "t": time.monotonic()}

                def settled():  # UDP: until the counter stops moving
                    n = self.vm_inserted(base)
                    if n != last["n"]:
                        last.update(n=n, t=time.monotonic())
                    return time.monotonic() - last["t"] > 0.5
                wait_until(settled, self.a.timeout, 0.02)
                t1 = last["t"]
            http_get(base + "/internal/force_flush", 60)
            t1 = max(t1, time.monotonic()) if transport == "http" else t1
            cpu1 = proc_cpu_s(p.pid)
            self.background_cpu(r, p, cpu1)
            last = {"n": -1, "t": time.monotonic()}

            def stored():  # outside the measured interval
                n = self.vm_count(base)
                if n >= points:
                    return n
                if n != last["n"]:
                    last.update(n=n, t=time.monotonic())
                elif time.monotonic() - last["t"] > 2.0:
                    return n or -1
                return None
            n = max(wait_until(stored, self.a.timeout, 0.2) or 0, 0)
            r.update({"events_sent": points, "events_received": n, "events_stored": n,
                      "seconds": t1 - t0, "server_cpu_s": cpu1 - cpu0,
                      "sender_cpu_s": sent["cpu_s"], "loss": points - n,
                      "series": sent.get("series"), "connections": sent.get("connections"),
                      "note": "VictoriaMetrics keeps millisecond timestamps and merges samples "
                              "of one series with equal timestamp and value when it merges "
                              f"parts: between {sent['distinct_ms']:,} and {points:,} of the "
                              f"{points:,} points may remain without any loss; the loss "
                              "column counts every point not stored. It keeps the numeric "
                              "fields only (here `n`, and `user_id` where it reads as a "
                              "number)"})
            q0 = time.monotonic()
            got = self.vm_windows(base)
            r["query_s"] = time.monotonic() - q0
            r["query_rows"] = len(got)
            r["query_correct"] = self.window_agreement(got)
            http_get(base + "/internal/force_flush", 10)
            r["bytes_on_disk"] = du_bytes(f"{d}/data")
            r["bytes_per_event"] = r["bytes_on_disk"] / n if n else None
        finally:
            p.close()
        return r

    # ClickHouse: large inserts (its docs: at least 1,000 rows per INSERT and no more than
    # about one INSERT per second; MergeTree writes one part per INSERT), several at once.
    CH_BATCH_ROWS = 100000
    CH_COLUMNS = ("id String, event_id String, user_id String, event_type String, page String, "
                  "ts UInt64, metadata String")
    CH_ENGINES = {
        # ORDER BY the query's key: the per-minute-by-page query reads ranges of it.
        "mergetree": "MergeTree() ORDER BY (page, ts)",
        # One row per identity once parts merge (FINAL merges at read time): the nearest
        # ClickHouse has to dedup.
        "replacing": "ReplacingMergeTree() ORDER BY id",
    }

    def clickhouse_config(self, d, http_port, tcp_port):
        conf, users = os.path.join(d, "config.xml"), os.path.join(d, "users.xml")
        with open(conf, "w") as f:
            f.write(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog>
    <console>0</console></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <mark_cache_size>536870912</mark_cache_size>
  <users_config>{users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
""")
        with open(users, "w") as f:
            f.write("""<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
""")
        return conf

    def run_clickhouse(self, engine):
        """ClickHouse (Debian's 18.16) fed JSONEachRow over HTTP: INSERTs of
        CH_BATCH_ROWS rows over several connections at once. Every INSERT is answered once
        its rows are in a part on disk, so the clock and the CPU stop at the last answer;
        the count and the query come after."""
        rows = self.peer_rows()
        name = "clickhouse_" + engine
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        http_port, tcp_port = free_port(), free_port()
        conf = self.clickhouse_config(d, http_port, tcp_port)
        p = Proc(["clickhouse-server", f"--config-file={conf}"], os.path.join(d, "stdout.log"))
        base = f"http://127.0.0.1:{http_port}/"
        conns = self.http_connections()
        final = " FINAL" if engine == "replacing" else ""
        r = {"system": name, "engine": self.CH_ENGINES[engine],
             "transport": f"JSONEachRow over HTTP, {self.CH_BATCH_ROWS:,}-row INSERTs on "
                          f"{conns} connections"}

        def sql(q, timeout=600):
            return http_post(base, q.encode(), timeout).decode()
        try:
            def up():
                if not p.alive():
                    err = os.path.join(d, "server.err.log")
                    raise RuntimeError("clickhouse-server exited at start:\n" + p.tail() + (
                        open(err, errors="replace").read()[-2000:] if os.path.exists(err)
                        else ""))
                try:
                    return sql("SELECT 1", 2).strip() == "1"
                except OSError:
                    return False
            if not wait_until(up, 60, 0.1):
                raise RuntimeError("clickhouse-server did not start:\n" + p.tail())
            sql(f"CREATE TABLE events ({self.CH_COLUMNS}) ENGINE = {self.CH_ENGINES[engine]}")
            insert = base + "?" + urllib.parse.urlencode(
                {"query": "INSERT INTO events FORMAT JSONEachRow"})
            cpu0 = proc_cpu_s(p.pid)
            t0 = time.monotonic()
            sent = self.blast(["--http", insert, "--http-file", rows["rows"], "--connections",
                               str(conns), "--batch-lines", str(self.CH_BATCH_ROWS)],
                              "blast.log")
            t1, cpu1 = time.monotonic(), proc_cpu_s(p.pid)
            self.background_cpu(r, p, cpu1)
            t0 += sent.get("setup_s", 0)  # reading the rows file is not the peer's time
            if sent.get("failed_requests"):
                raise RuntimeError(f"{sent['failed_requests']} INSERTs failed (blast.log)")
            want = rows["events"] if engine == "mergetree" else rows["distinct_ids"]
            n = int(sql(f"SELECT count() FROM events{final}"))
            r.update({"events_sent": rows["events"], "events_received": rows["events"],
                      "events_stored": n, "expected_stored": want,
                      "seconds": t1 - t0, "server_cpu_s": cpu1 - cpu0,
                      "sender_cpu_s": sent["cpu_s"], "loss": want - n,
                      "connections": conns, "requests": sent.get("requests")})
            r["note"] = ("keeps every row it is sent (duplicates and late events included); "
                         "loss counts rows missing" if engine == "mergetree" else
                         "ReplacingMergeTree keeps one row per id only once parts merge, in "
                         "the background; the count and the query read with FINAL (merging "
                         f"at read time); {rows['events'] - rows['distinct_ids']:,} of "
                         f"{rows['events']:,} rows repeat an identity; loss counts distinct "
                         "identities missing. Late events are kept and counted, unlike "
                         "sluice's windows")
            lo, hi = self.time_range_ms()
            q0 = time.monotonic()
            out = sql(f"SELECT intDiv(ts, 60000) * 60000 AS m, page, count() AS c FROM events"
                      f"{final} WHERE ts >= {lo} AND ts < {hi} GROUP BY m, page "
                      "FORMAT JSONEachRow")
            r["query_s"] = time.monotonic() - q0
            got = {}
            for line in out.splitlines():
                j = json.loads(line)
                got[(int(j["m"]), j["page"])] = int(j["c"])
            r["query_rows"] = len(got)
            r["query_correct"] = self.window_agreement(got)
            parts = sql("SELECT path FROM system.parts WHERE active AND database = 'default' "
                        "AND table = 'events' FORMAT TSV").split()
            r["parts"] = len(parts)
            r["bytes_on_disk"] = sum(du_bytes(path) for path in parts)
            r["bytes_per_event"] = r["bytes_on_disk"] / n if n else None
        finally:
            p.close()
        return r

    # NATS JetStream: a broker, the anchor that stores the events and computes nothing.
    NATS_WINDOW = 4000  # unacknowledged publishes at most (nats.go's PublishAsyncMaxPending)

    def run_nats(self):
        """nats-server -js with a file-storage stream; every event published with
        Nats-Msg-Id = sluice's identity, so the stream's duplicate window (set longer than
        the run) drops re-sends; each publish acknowledged by JetStream. The clock and the
        CPU stop at the last acknowledgement."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import nats_pub
        rows = self.peer_rows()
        d = os.path.join(self.tmp, "nats")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        port = free_port()
        p = Proc(["nats-server", "-js", "-sd", f"{d}/store", "-a", "127.0.0.1", "-p", str(port)],
                 os.path.join(d, "nats.log"))
        r = {"system": "nats_jetstream",
             "transport": f"NATS client protocol (TCP), HPUB with Nats-Msg-Id, at most "
                          f"{self.NATS_WINDOW:,} unacknowledged"}
        try:
            def up():
                if not p.alive():
                    raise RuntimeError("nats-server exited at start:\n" + p.tail())
                try:
                    nats_pub.connect(port, timeout=2).close()
                    return True
                except OSError:
                    return False
            if not wait_until(up, 60, 0.1):
                raise RuntimeError("nats-server did not start:\n" + p.tail())
            stream = {"name": "EVENTS", "subjects": ["events"], "storage": "file",
                      "retention": "limits", "num_replicas": 1,
                      "duplicate_window": 3600 * 10**9}  # ns: longer than any run
            reply = nats_pub.request(port, "$JS.API.STREAM.CREATE.EVENTS",
                                     json.dumps(stream).encode())
            if reply.get("error"):
                raise RuntimeError(f"JetStream stream create: {reply['error']}")
            cpu0 = proc_cpu_s(p.pid)
            t0 = time.monotonic()
            pub = subprocess.run(["/usr/bin/python3", nats_pub.__file__, str(port), "events",
                                  rows["msgs"], str(self.NATS_WINDOW)], capture_output=True,
                                 text=True, timeout=self.a.timeout)
            cpu1 = proc_cpu_s(p.pid)
            self.background_cpu(r, p, cpu1)
            with open(os.path.join(d, "publisher.log"), "w") as f:
                f.write(pub.stderr)
            if not pub.stdout.strip():
                raise RuntimeError(f"NATS publisher failed: {pub.stderr.strip()[-500:]}")
            rep = json.loads(pub.stdout.strip().splitlines()[-1])
            info = nats_pub.request(port, "$JS.API.STREAM.INFO.EVENTS", b"")
            n = info["state"]["messages"]
            want = rows["distinct_ids"]
            r.update({"events_sent": rows["events"], "events_received": rep["acks"],
                      "events_stored": n, "expected_stored": want,
                      "seconds": rep["seconds"], "server_cpu_s": cpu1 - cpu0,
                      "sender_cpu_s": rep["cpu_s"], "loss": want - n,
                      "publisher": rep, "stream_bytes": info["state"]["bytes"],
                      "query_s": None, "query_correct": None,
                      "na": {"query": "a broker: stores the events, computes no "
                                      "per-minute-by-page result"},
                      "note": f"JetStream acknowledged {rep['acks']:,} of {rep['sent']:,} "
                              f"publishes ({rep['duplicates']:,} as duplicates of an earlier "
                              f"Nats-Msg-Id, {rep['errors']:,} errors); loss counts distinct "
                              "identities missing from the stream. It stores the events' bytes "
                              "as sent and does not fsync each message"})
            if rep["errors"] or rep["acks"] != rep["sent"]:
                r["note"] += f"; first error: {rep.get('first_error')}"
            r["bytes_on_disk"] = du_bytes(f"{d}/store")
            r["bytes_per_event"] = r["bytes_on_disk"] / n if n else None
        finally:
            p.close()
        return r

    def time_range_ms(self):
        ks = [k[0] for k in self.expected_windows] or [0]
        return min(ks), max(ks) + 60000

    def vm_count(self, base):
        lo, hi = self.time_range_ms()
        q = urllib.parse.urlencode({
            "query": f"sum(count_over_time(events_n[{(hi - lo) // 1000 + 120}s]))",
            "time": f"{(hi + 60000) / 1000:.3f}", "nocache": "1"})
        res = json.loads(http_get(f"{base}/api/v1/query?{q}"))["data"]["result"]
        return int(float(res[0]["value"][1])) if res else 0

    def vm_windows(self, base):
        """Per minute by page: count_over_time over [start, end) evaluated at end - 1 ms."""
        lo, hi = self.time_range_ms()
        q = urllib.parse.urlencode({
            "query": "sum by (page) (count_over_time(events_n[1m]))",
            "start": f"{(lo + 60000 - 1) / 1000:.3f}", "end": f"{(hi - 1) / 1000:.3f}",
            "step": "60s", "nocache": "1"})
        res = json.loads(http_get(f"{base}/api/v1/query_range?{q}"))["data"]["result"]
        got = {}
        for series in res:
            page = series["metric"].get("page", "")
            for ts, v in series["values"]:
                end_ms = int(round(float(ts) * 1000)) + 1
                got[(end_ms - 60000, page)] = int(float(v))
        return got

    def run_influxdb(self, transport):
        d = os.path.join(self.tmp, f"influx-{transport}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        http_port, udp_port, bind_port = free_port(), free_port(), free_port()
        conf = os.path.join(d, "influxdb.conf")
        with open(conf, "w") as f:
            f.write(f"""reporting-disabled = true
bind-address = "127.0.0.1:{bind_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[[udp]]
  enabled = true
  bind-address = "127.0.0.1:{udp_port}"
  database = "bench"
  precision = "n"
  batch-size = 5000
  batch-pending = 100
  batch-timeout = "100ms"
  read-buffer = 67108864
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
        p = Proc(["influxd", "-config", conf], os.path.join(d, "influxd.log"))
        base = f"http://127.0.0.1:{http_port}"
        r = {"system": "influxdb_" + transport,
             "transport": f"InfluxDB line protocol over {transport.upper()}" + (
                 f", 5,000-line POSTs on {self.http_connections()} connections"
                 if transport == "http" else ", 5,000-point batches (its [[udp]] settings)")}
        try:
            def ping():
                try:
                    http_get(base + "/ping", 2)
                    return True
                except OSError:
                    return False
            if not wait_until(ping, 60, 0.1):
                raise RuntimeError("influxd did not start:\n" + p.tail())
            http_post(base + "/query?" + urllib.parse.urlencode({"q": "CREATE DATABASE bench"}))
            cpu0 = proc_cpu_s(p.pid)
            t0 = time.monotonic()
            if transport == "udp":
                sent = self.blast(["--format", "lp", "--target", f"127.0.0.1:{udp_port}"],
                                  "blast.log")
            else:
                sent = self.blast(["--http", base + "/write?db=bench&precision=n",
                                   "--connections", str(self.http_connections())], "blast.log")
            t0 += sent.get("setup_s", 0)  # converting to line protocol is not the peer's time
            points = sent["events"]
            distinct = sent["distinct_ns"]  # equal series + timestamp overwrite each other
            last = {"n": -1, "t": time.monotonic()}

            def settled():
                n = self.influx_count(base)
                if n >= distinct:
                    return n
                if n != last["n"]:
                    last.update(n=n, t=time.monotonic())
                elif time.monotonic() - last["t"] > 2.0:
                    return n or -1
                return None
            if transport == "http":
                # A write is answered once its points are in the WAL and the cache, where
                # queries see them: the clock and the CPU stop at the last answer, and the
                # count comes after (polling it would bill InfluxDB for the harness's queries).
                t1, cpu1 = time.monotonic(), proc_cpu_s(p.pid)
                n = max(wait_until(settled, self.a.timeout, 0.1) or 0, 0)
            else:
                n = wait_until(settled, self.a.timeout, 0.1)
                n = max(n or 0, 0)
                t1 = time.monotonic() if n >= distinct else last["t"]
                cpu1 = proc_cpu_s(p.pid)
            r.update({"events_sent": points, "events_received": n, "events_stored": n,
                      "seconds": t1 - t0, "server_cpu_s": cpu1 - cpu0,
                      "sender_cpu_s": sent["cpu_s"], "expected_stored": distinct,
                      "loss": distinct - n,
                      "note": f"{points - distinct:,} of {points:,} points share series and "
                              "timestamp with another (byte-exact re-sends, mostly) and "
                              "overwrite it: InfluxDB's only dedup; loss counts what is "
                              "missing beyond that"})
            q0 = time.monotonic()
            got = self.influx_windows(base)
            r["query_s"] = time.monotonic() - q0
            r["query_rows"] = len(got)
            r["query_correct"] = self.window_agreement(got)
            r["bytes_on_disk"] = du_bytes(f"{d}/data") + du_bytes(f"{d}/wal")
            r["bytes_per_event"] = r["bytes_on_disk"] / n if n else None
        finally:
            p.close()
        return r

    def influx_query(self, base, q):
        body = http_get(base + "/query?" + urllib.parse.urlencode({"db": "bench", "q": q,
                                                                   "epoch": "ms"}))
        return json.loads(body)["results"][0].get("series", [])

    def influx_count(self, base):
        s = self.influx_query(base, "SELECT count(n) FROM events")
        return int(s[0]["values"][0][1]) if s else 0

    def influx_windows(self, base):
        lo, hi = self.time_range_ms()
        got = {}
        for series in self.influx_query(
                base, f"SELECT count(n) FROM events WHERE time >= {lo}ms AND time < {hi}ms "
                      "GROUP BY time(1m), page"):
            page = series.get("tags", {}).get("page", "")
            for ts, v in series["values"]:
                if v:
                    got[(int(ts), page)] = int(v)
        return got

    # ---------------------------------------------------------------- phases
    def throughput(self):
        systems = {
            "sluice_dpdk": self.run_sluice_dpdk,
            "sluice_dpdk_binary": lambda: self.run_sluice_dpdk(fmt="binary"),
            "sluice_kernel": self.run_sluice_kernel,
            "sluice_kernel_binary": lambda: self.run_sluice_kernel(fmt="binary"),
            "recvmmsg_floor": self.run_floor,
        }
        if not self.a.skip_kafka:
            for acks in ("1", "all"):
                for codec in ("none", "lz4"):
                    systems[f"sluice_kafka_acks{acks}_{codec}"] = \
                        (lambda a=acks, c=codec: self.run_sluice_kafka(acks=a, codec=c))
            systems["sluice_kafka_acksall_none_idem"] = \
                lambda: self.run_sluice_kafka(acks="all", codec="none", idempotent=True)
        if not self.a.skip_peers:
            systems.update({
                "victoriametrics_udp": lambda: self.run_victoriametrics("udp"),
                "victoriametrics_http": lambda: self.run_victoriametrics("http"),
                "influxdb_udp": lambda: self.run_influxdb("udp"),
                "influxdb_http": lambda: self.run_influxdb("http"),
                "clickhouse_mergetree": lambda: self.run_clickhouse("mergetree"),
                "clickhouse_replacing": lambda: self.run_clickhouse("replacing"),
                "nats_jetstream": self.run_nats,
            })
        else:
            self.results["notes"].append("peers skipped (--skip-peers)")
        names = [n for n in systems if not self.a.systems or n in self.a.systems.split(",")]
        for rep in range(self.a.reps):
            # Interleaved: each repetition runs every system once, in a rotated order.
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                log(f"throughput rep {rep + 1}/{self.a.reps}: {name}")
                try:
                    r = systems[name]()
                except Exception as e:  # a failed run is a reported cell, not a crash
                    r = {"system": name, "error": traceback.format_exc()[-2000:]}
                    log(f"  {name} failed: {str(e)[-300:]}")
                r["rep"] = rep
                self.results["runs"].append(r)
                self.save()
        self.compare_formats()
        self.save()

    def compare_formats(self):
        """The same events in either format must give the same per-minute-by-page result:
        each binary run against the first JSON run of sluice that lost nothing and whose
        counters equal the model (a lossy run is no reference)."""
        runs = [r for r in self.results["runs"] if id(r) in self.run_windows]
        ref = next((r for r in runs if r.get("format") == "json" and r.get("loss") == 0
                    and r.get("correct_counters")), None)
        for r in runs:
            if r.get("format") != "binary":
                continue
            if ref is None:
                r["same_windows_as_json_na"] = "no lossless JSON run of sluice to compare with"
                continue
            r["same_windows_as_json"] = self.run_windows[id(r)] == self.run_windows[id(ref)]
            r["json_reference"] = f"{ref['system']} rep {ref['rep'] + 1}"

    def latency(self):
        """Window-visible and durable latency at 10/50/90 % of each path's measured rate:
        the kernel path (sluice-blast over loopback UDP, paced) and the DPDK path
        (sluice-gen over net_memif, paced)."""
        ok = [r for r in self.results["runs"] if "error" not in r and r.get("seconds")]
        kernel = [r for r in ok if r.get("system") == "sluice_kernel"]
        dpdk = [r for r in ok if r.get("system") == "sluice_dpdk"]
        paths = []
        if kernel:
            dps = statistics.median(self.expected["datagrams"] / r["seconds"] for r in kernel)
            paths.append(("kernel", "datagrams/s", dps, "the kernel path's measured rate",
                          lambda pps, pct: self.run_sluice_kernel(pps=pps, tag=f"latency{pct}")))
        else:
            self.results["notes"].append("kernel latency runs skipped: no kernel-path rate "
                                         "measured")
        # memif carries every frame (ignored ones too): its pace is in frames/s.
        frames = self.expected["rx_packets"]
        if dpdk:
            fps = statistics.median(frames / r["seconds"] for r in dpdk)
            base = "the DPDK path's measured rate (net_pcap)"
        elif kernel:
            fps = dps * frames / self.expected["datagrams"]
            base = "the kernel path's measured rate (no DPDK rate measured in this run)"
        else:
            fps = None
        if fps:
            paths.append(("dpdk", "frames/s", fps, base,
                          lambda pps, pct: self.run_sluice_memif(pps, tag=f"latency_dpdk{pct}")))
        else:
            self.results["notes"].append("DPDK latency runs skipped: no rate measured")
        for path, unit, rate, base, run in paths:
            for pct in (10, 50, 90):
                pps = max(1, int(rate * pct / 100))
                log(f"latency ({path} path) at {pct}% of {base} ({pps:,} {unit})")
                row = {"path": path, "load_pct": pct, "offered_pps": pps, "pps_unit": unit,
                       "rate_base": base}
                try:
                    r = run(pps, pct)
                    lat = self.latency_percentiles(r.get("stats", {}).get("latency"))
                    row.update({"transport": r["transport"],
                                "events_per_s": r["events_received"] / r["seconds"],
                                "loss": r["loss"], "correct_counters": r["correct_counters"],
                                "query_correct": r.get("query_correct"), "latency": lat,
                                # A shared machine's load moves these figures: say how busy.
                                "loadavg_1m": os.getloadavg()[0],
                                "rx_backpressure_waits": sum(
                                    c.get("backpressure_waits", 0) for c in
                                    r.get("stats", {}).get("per_core", [])
                                    if c.get("role") == "rx")})
                    if lat is None:
                        row["na"] = "sluiced's stats carry no latency histograms"
                except Exception as e:
                    row["error"] = str(e)[-2000:]
                self.results["latency"].append(row)
                self.save()

    @staticmethod
    def latency_percentiles(lat):
        """sluiced's since-start histograms -> {stage: {p50, p99, p999, max, count, unit}}."""
        if not lat:
            return None
        out = {}
        for stage in ("window_visible", "durable"):
            h = lat.get(stage)
            if not h or not h.get("count"):
                continue
            out[stage] = {"p50": h["p50_us"], "p99": h["p99_us"], "p999": h["p999_us"],
                          "max": h["max_us"], "count": h["count"], "unit": "us"}
        return out or None

    def scaling(self):
        n = len(self.cpus)
        counts = sorted({1, n} | {c for c in (2, 4, 8, 16, 32, 64) if c < n} | {max(1, n - 1)})
        for w in counts:
            for rep in range(self.a.scaling_reps):
                log(f"scaling: {w} worker(s), rep {rep + 1}")
                try:
                    r = self.run_sluice_dpdk(workers=w, tag=f"scale{w}")
                    row = {"workers": w, "rep": rep,
                           "events_per_s": r["events_received"] / r["seconds"],
                           "events_per_cpu_s": r["events_received"] / r["server_cpu_s"],
                           "server_cpu_s": r["server_cpu_s"],
                           "correct_counters": r["correct_counters"]}
                except Exception as e:
                    row = {"workers": w, "rep": rep, "error": str(e)[-2000:]}
                self.results["scaling"].append(row)
                self.save()

    def interference(self):
        """Does control-plane load slow the data path? sluice over DPDK with no client and
        with --hammer-clients clients asking `stats` back to back, interleaved."""
        n = self.a.hammer_clients
        for rep in range(self.a.scaling_reps):
            for clients in ((0, n) if rep % 2 == 0 else (n, 0)):
                log(f"control-plane interference: {clients} client(s), rep {rep + 1}")
                try:
                    r = self.run_sluice_dpdk(tag=f"hammer{clients}", clients=clients)
                    row = {"clients": clients, "rep": rep,
                           "events_per_s": r["events_received"] / r["seconds"],
                           "events_per_cpu_s": r["events_received"] / r["server_cpu_s"],
                           "correct_counters": r["correct_counters"],
                           "control_replies": r.get("control_replies")}
                except Exception as e:
                    row = {"clients": clients, "rep": rep, "error": str(e)[-2000:]}
                self.results.setdefault("interference", []).append(row)
                self.save()

    def microbenchmarks(self):
        out = os.path.join(self.a.out, "microbench")
        os.makedirs(out, exist_ok=True)
        log("stage microbenchmarks")
        flags = ["--benchmark_min_time=0.05", "--benchmark_repetitions=1"] if self.a.quick \
            else ["--benchmark_min_time=0.2", "--benchmark_repetitions=3",
                  "--benchmark_report_aggregates_only=true"]
        results = {}
        for b in sorted(os.listdir(os.path.join(self.build, "bench"))):
            path = os.path.join(self.build, "bench", b)
            if not b.endswith("_bench") or not os.access(path, os.X_OK):
                continue
            j = os.path.join(out, b + ".json")
            rc = subprocess.run([path, f"--benchmark_out={j}", "--benchmark_out_format=json"] +
                                flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, SLUICE_BENCH_DIR=self.tmp)).returncode
            results[b] = {"json": os.path.relpath(j, self.a.out), "exit_code": rc}
        self.results["microbench"] = results

    def machine(self):
        def cmd(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
            except OSError:
                return None

        def pkg(name):
            return cmd(["dpkg-query", "-W", "-f=${Version}", name]) or None
        self.results["machine"] = {
            "host": platform.node(),
            "nproc": len(self.cpus),
            "lscpu": cmd(["lscpu"]),
            "kernel": platform.release(),
            "nic": "none: DPDK net_pcap virtual device and loopback (no physical NIC)",
            "versions": {
                "sluice": cmd(["git", "-C", os.path.dirname(self.build), "describe", "--always",
                               "--dirty"]),
                "dpdk": pkg("libdpdk-dev"), "liburing": pkg("liburing-dev"),
                "victoria-metrics": pkg("victoria-metrics"), "influxdb": pkg("influxdb"),
                "clickhouse-server": pkg("clickhouse-server"), "nats-server": pkg("nats-server"),
                "gcc": pkg("g++"), "kcat": pkg("kcat"), "librdkafka": pkg("librdkafka1"),
                "confluent-kafka": pkg("python3-confluent-kafka"),
            },
        }
        self.results["command"] = " ".join(["scripts/bench"] + sys.argv[1:])
        self.results["started"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        self.results["config"] = {k: v for k, v in vars(self.a).items()}

    def save(self):
        os.makedirs(self.a.out, exist_ok=True)
        with open(os.path.join(self.a.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1, default=str)

    def socket_buffers(self, size=None):
        """Every UDP receiver gets the same, large default receive buffer (root only)."""
        keys = ("net.core.rmem_default", "net.core.rmem_max")
        paths = ["/proc/sys/" + k.replace(".", "/") for k in keys]
        if size is None:
            return [open(p).read().strip() for p in paths]
        try:
            for p, v in zip(paths, size):
                with open(p, "w") as f:
                    f.write(str(v))
            return True
        except OSError:
            return False

    def run(self):
        self.machine()
        saved = self.socket_buffers()
        if self.socket_buffers([32 << 20, 64 << 20]):
            self.results["notes"].append(
                "net.core.rmem_default was raised to 32 MiB (rmem_max 64 MiB) for the run, so "
                "every UDP receiver, sluice's and the peers', gets the same large socket buffer")
        else:
            self.results["notes"].append(
                f"net.core.rmem_default/rmem_max left at {saved} (not root): UDP receivers "
                "that do not size their own buffer may lose datagrams at high rates")
        phases = self.results["phases"] = []
        if self.a.build_seconds is not None:
            phases.append({"phase": "build (scripts/bootstrap)", "seconds": self.a.build_seconds})
        start = time.monotonic()

        def phase(name, fn, skipped=None):
            if skipped:
                phases.append({"phase": name, "seconds": None, "skipped": skipped})
                return
            t0 = time.monotonic()
            try:
                fn()
            finally:
                phases.append({"phase": name, "seconds": time.monotonic() - t0})
                self.save()
        try:
            phase("dataset (sluice-gen, binary conversion)", self.make_dataset)
            phase("throughput", self.throughput)
            phase("latency", self.latency, self.a.skip_latency and "--skip-latency")
            phase("Kafka produce-ack latency", self.kafka_latency,
                  (self.a.skip_latency and "--skip-latency") or
                  (self.a.skip_kafka and "--skip-kafka"))
            phase("scaling", self.scaling, self.a.skip_scaling and "--skip-scaling")
            phase("interference", self.interference,
                  not self.a.hammer_clients and "--hammer-clients 0")
            phase("microbenchmarks", self.microbenchmarks,
                  self.a.skip_microbench and "--skip-microbench")
        finally:
            self.socket_buffers(saved)
            self.results["harness_seconds"] = time.monotonic() - start
            self.results["finished"] = datetime.datetime.now(
                datetime.timezone.utc).isoformat()
            self.save()
            for ph in phases:
                took = f"{ph['seconds']:7.1f} s" if ph["seconds"] is not None \
                    else f"skipped ({ph['skipped']})"
                log(f"phase {ph['phase']:<40} {took}")
            total = self.results["harness_seconds"] + (self.a.build_seconds or 0)
            log(f"{'total' + (' (build included)' if self.a.build_seconds is not None else ''):<46}"
                f" {total:7.1f} s")
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--out", required=True, help="directory for results.json and microbench/")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int)
    ap.add_argument("--reps", type=int)
    ap.add_argument("--scaling-reps", type=int)
    ap.add_argument("--workers", type=int, help="workers for the throughput runs")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--systems", help="comma-separated subset of the throughput systems")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-kafka", action="store_true",
                    help="leave out the Kafka rows and their latency runs")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--hammer-clients", type=int, default=100,
                    help="control clients for the interference runs (0: skip them)")
    ap.add_argument("--skip-microbench", action="store_true")
    ap.add_argument("--sluiced-config", help="a TOML file every sluiced run reads (--config)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    build_s = os.environ.get("SLUICE_BENCH_BUILD_SECONDS")
    ap.add_argument("--build-seconds", type=float, default=float(build_s) if build_s else None,
                    help="how long scripts/bench's build took, reported as a phase (default: "
                         "$SLUICE_BENCH_BUILD_SECONDS, which scripts/bench sets)")
    ap.add_argument("--tmp-dir", default="/var/tmp", help="where data dirs go (O_DIRECT "
                    "needs a real filesystem, not tmpfs)")
    a = ap.parse_args()
    a.events = a.events or (300_000 if a.quick else 2_000_000)
    a.reps = a.reps or (2 if a.quick else 5)
    a.scaling_reps = a.scaling_reps or (1 if a.quick else 3)
    a.workers = a.workers or max(1, len(os.sched_getaffinity(0)) - 1)
    Harness(a).run()


if __name__ == "__main__":
    main()

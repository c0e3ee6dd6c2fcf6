#!/usr/bin/env python3
"""Kafka consume benchmark (issue 16 §5, docs/benchmarks.md "Kafka consume"): librdkafka
(kcat -C) reading events-topic from the start, with ingest idle and with a kcat -P producer
ingesting at the same time, and the ingest rate with and without that consumer, all in one
sluiced run, the phases alternated and repeated so each comparison sits beside its pair.

Measured per phase: wall time, records, sluiced's whole-process CPU (/proc, every lcore's
idle polling included), hence records/s and records per sluiced CPU-second; for ingest, the
time until the workers have handled every produced record (stats totals).

Usage: bench/e2e/kafka_consume.py --build build [--events 300000] [--reps 2] [--out FILE]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import control, free_port, proc_cpu_s, wait_until  # noqa: E402


def done_events(sock):
    t = control(sock, "stats")["totals"]
    return t["events_accepted"] + t["duplicates"] + t["dead_letters"]


def kcat_consume(port, partition=0):
    """kcat -C from the beginning to the high watermark (-e): (records, wall seconds)."""
    t0 = time.monotonic()
    out = subprocess.run(["kcat", "-C", "-b", f"127.0.0.1:{port}", "-t", "events-topic", "-p",
                          str(partition), "-o", "beginning", "-e", "-q", "-f", "%o\n"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return len(out.stdout.splitlines()), time.monotonic() - t0


def kcat_produce_argv(port, path):
    return ["kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", "events-topic", "-X", "acks=1",
            "-X", "linger.ms=5", "-X", "batch.size=1000000", "-l", path]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--events", type=int, default=300000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-kconsume-")
    gen = os.path.join(tmp, "gen")
    subprocess.run([f"{a.build}/tools/sluice-gen", "--events", str(a.events), "--seed",
                    str(a.seed), "--out", gen, "--malformed-rate", "0", "--dup-rate", "0",
                    "--id-dup-rate", "0"], check=True, stdout=subprocess.DEVNULL)
    ndjson = os.path.join(tmp, "events.ndjson")
    subprocess.run([f"{a.build}/bench/sluice-blast", "--pcap", os.path.join(gen, "events.pcap"),
                    "--write-ndjson", ndjson], check=True, stdout=subprocess.DEVNULL)
    lines = sum(1 for _ in open(ndjson, "rb"))
    port = free_port()
    sock = os.path.join(tmp, "ctl.sock")
    # One Kafka RX lcore and one worker (the docs/KAFKA.md measurements' map).
    argv = [f"{a.build}/control/sluiced", "--no-huge", "--no-pci", "-m", "1024", "--lcores",
            "0@0,1@0,2@1", "--file-prefix", f"kconsume{os.getpid()}", "--", "--kafka",
            f"127.0.0.1:{port}", "--data-dir", os.path.join(tmp, "data"), "--control-socket",
            sock, "--workers", "1"]
    log = open(os.path.join(tmp, "sluiced.log"), "w")
    d = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    results = {"events_per_load": lines, "phases": []}
    try:
        wait_until(lambda: os.path.exists(sock) and control(sock, "status").get("ok"), 60)

        loads = [0]

        def variant():
            """The file with every identity made new (event_id and user_id prefixed), so
            each load stores its events instead of deduplicating them."""
            loads[0] += 1
            path = os.path.join(tmp, f"load{loads[0]}.ndjson")
            tag = f"L{loads[0]}-".encode()
            with open(ndjson, "rb") as src, open(path, "wb") as dst:
                for line in src:
                    dst.write(line.replace(b'"event_id":"', b'"event_id":"' + tag)
                              .replace(b'"user_id":"', b'"user_id":"' + tag))
            return path

        def ingest(with_consumer):
            """Produces a new load; with_consumer: kcat -C reads events-topic from the
            start meanwhile (it ends at the watermark it finds on its last fetch)."""
            path = variant()
            before = done_events(sock)
            cpu0, t0 = proc_cpu_s(d.pid), time.monotonic()
            prod = subprocess.Popen(kcat_produce_argv(port, path), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            consumed = []
            reader = threading.Thread(target=lambda: consumed.append(kcat_consume(port)))
            if with_consumer:
                reader.start()
            wait_until(lambda: done_events(sock) >= before + lines, 600, 0.01)
            wall, cpu = time.monotonic() - t0, proc_cpu_s(d.pid) - cpu0
            prod.wait(60)
            if with_consumer:
                reader.join()
            os.unlink(path)
            stored = control(sock, "stats")["totals"]["events_accepted"]
            row = {"stored_after": stored,"phase": "ingest + consumer" if with_consumer else "ingest alone",
                   "events": lines, "wall_s": wall, "sluiced_cpu_s": cpu,
                   "events_per_s": lines / wall}
            if consumed:
                row["consumer_records"], row["consumer_wall_s"] = consumed[0]
                row["consumer_records_per_s"] = consumed[0][0] / consumed[0][1]
            return row

        def consume_idle():
            wait_until(lambda: control(sock, "stats")["kafka"]["consume"] is not None, 10)
            st0 = control(sock, "stats")["kafka"]["consume"]
            cpu0 = proc_cpu_s(d.pid)
            n, wall = kcat_consume(port)
            cpu = proc_cpu_s(d.pid) - cpu0
            st1 = control(sock, "stats")["kafka"]["consume"]
            return {"phase": "consume, ingest idle", "records": n, "wall_s": wall,
                    "sluiced_cpu_s": cpu, "records_per_s": n / wall,
                    "records_per_cpu_s": n / cpu if cpu > 0 else None,
                    "cache_hits": st1["cache_hits"] - st0["cache_hits"],
                    "cache_misses": st1["cache_misses"] - st0["cache_misses"]}

        # Idle baseline of sluiced's CPU (its lcores poll).
        cpu0 = proc_cpu_s(d.pid)
        time.sleep(2)
        results["idle_cpu_per_s"] = (proc_cpu_s(d.pid) - cpu0) / 2
        results["phases"].append(ingest(False))  # fills the store
        control(sock, "flush")
        # The cache: the same records read twice, built (cold) then from the cache (warm;
        # one load fits the cache's 64 MiB).
        results["phases"].append(consume_idle())
        results["phases"].append(consume_idle())
        for _ in range(a.reps):
            results["phases"].append(ingest(False))
            results["phases"].append(ingest(True))
            results["phases"].append(consume_idle())
        results["final_stats_consume"] = control(sock, "stats")["kafka"]["consume"]
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(120)
        log.close()
    text = json.dumps(results, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

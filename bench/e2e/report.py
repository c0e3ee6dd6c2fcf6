#!/usr/bin/python3
"""Renders a benchmark run (results.json from harness.py) as a Markdown report with PNG
plots made by gnuplot.

  report.py RESULTS_DIR REPORT.md     (plots go beside REPORT.md)

Every table cell holds a number or an explicit reason why there is none. Standard
library only; gnuplot (Debian's gnuplot-nox) draws the plots.
"""
import json
import os
import statistics
import subprocess
import sys

SYSTEMS = [
    ("sluice_dpdk", "sluice, DPDK"),
    ("sluice_kernel", "sluice, kernel UDP"),
    ("recvmmsg_floor", "recvmmsg floor"),
    ("victoriametrics_udp", "VictoriaMetrics, UDP"),
    ("victoriametrics_http", "VictoriaMetrics, HTTP"),
    ("influxdb_udp", "InfluxDB 1.x, UDP"),
    ("influxdb_http", "InfluxDB 1.x, HTTP"),
]


def metrics(r):
    """Derived metrics of one throughput run; None where the run cannot give one."""
    got = r.get("events_received")
    secs, cpu = r.get("seconds"), r.get("server_cpu_s")
    sent = r.get("events_sent")
    return {
        "events_per_s": got / secs if got and secs else None,
        "events_per_cpu_s": got / cpu if got and cpu else None,
        "cpu_s_per_m": cpu / (got / 1e6) if got and cpu else None,
        "loss_pct": 100.0 * r["loss"] / sent if sent and r.get("loss") is not None else None,
        "bytes_per_event": r.get("bytes_per_event"),
        "query_ms": r["query_s"] * 1000 if r.get("query_s") is not None else None,
        "query_correct_pct": 100.0 * r["query_correct"]
        if r.get("query_correct") is not None else None,
    }


def summarize(values):
    """(median, min, max) of the values that exist, or None."""
    vs = [v for v in values if v is not None]
    if not vs:
        return None
    return statistics.median(vs), min(vs), max(vs)


def human(v, unit=""):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e9:
        s = f"{v / 1e9:.2f} G"
    elif a >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif a >= 1e4:
        s = f"{v / 1e3:.1f} k"
    elif a >= 100:
        s = f"{v:.0f} "
    elif a >= 1:
        s = f"{v:.2f} "
    else:
        s = f"{v:.3f} "
    return (s + unit).strip()


def cell(summary, unit="", spread=True):
    if summary is None:
        return None
    med, lo, hi = summary
    text = human(med, unit)
    if spread and hi > lo:
        text += f" ({human(lo)}–{human(hi)})"
    return text


NA_KEYS = {
    "events_per_s": "events_per_s", "events_per_cpu_s": "events_per_s",
    "cpu_s_per_m": "events_per_s", "loss_pct": "loss", "bytes_per_event": "bytes_per_event",
    "query_ms": "query", "query_correct_pct": "query",
}


def reason(runs, key):
    """Why a cell is empty: the runs' own explanation, or their error."""
    for r in runs:
        na = r.get("na", {})
        if NA_KEYS[key] in na:
            return na[NA_KEYS[key]]
    errors = [r["error"].strip().splitlines()[-1] for r in runs if r.get("error")]
    if errors:
        return "run failed: " + errors[0][:160]
    if not runs:
        return "not run"
    return "not measured by this run"


def throughput_table(results):
    runs = [r for r in results.get("runs", [])]
    cols = [("events_per_s", "events/s sustained", "/s"),
            ("events_per_cpu_s", "events per server CPU-second", ""),
            ("cpu_s_per_m", "server CPU s per M events", "s"),
            ("loss_pct", "loss %", "%"),
            ("bytes_per_event", "bytes on disk per event", "B"),
            ("query_ms", "per-minute-by-page query", "ms"),
            ("query_correct_pct", "query rows equal to the model", "%")]
    lines = ["| system | reps | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    summary = {}
    footnotes = []
    for key, label in SYSTEMS:
        mine = [r for r in runs if r.get("system") == key]
        if not mine:
            continue
        ok = [r for r in mine if "error" not in r]
        ms = [metrics(r) for r in ok]
        row = [label, f"{len(ok)}/{len(mine)}"]
        summary[key] = {}
        for col, _title, unit in cols:
            s = summarize(m[col] for m in ms)
            summary[key][col] = s
            text = cell(s, unit)
            if text is None:
                footnotes.append(reason(mine, col))
                text = f"n/a [{len(footnotes)}]"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"[{i + 1}] {n}" for i, n in enumerate(footnotes)]
    for key, label in SYSTEMS:
        system_notes = sorted({r["note"] for r in runs if r.get("system") == key
                               and r.get("note")})
        if system_notes:
            notes.append(f"{label}: {system_notes[-1]}")
    return lines, notes, summary


def ratio_lines(summary):
    out = []

    def med(sys_key, col):
        s = summary.get(sys_key, {}).get(col)
        return s[0] if s else None
    d, k = med("sluice_dpdk", "events_per_cpu_s"), med("sluice_kernel", "events_per_cpu_s")
    f = med("recvmmsg_floor", "events_per_cpu_s")
    if d and k:
        out.append(f"- sluice DPDK / sluice kernel UDP, events per server CPU-second: "
                   f"**{d / k:.2f}×** (SPEC §7 target: ≥ 3× on JSON)")
    if k and f:
        out.append(f"- sluice kernel UDP / recvmmsg floor, events per CPU-second: "
                   f"{k / f:.2f}× (the floor parses and stores nothing)")
    for peer, label in SYSTEMS[3:]:
        p = med(peer, "events_per_cpu_s")
        if d and p:
            out.append(f"- sluice DPDK / {label}, events per server CPU-second: {d / p:.1f}×")
    return out


def latency_table(results):
    rows = results.get("latency", [])
    if not rows:
        return ["No latency runs: " + "; ".join(results.get("notes", []) or ["not run"])], []
    stages = []
    for r in rows:
        for stage in (r.get("latency") or {}):
            if stage not in stages:
                stages.append(stage)
    pcts = ["p50", "p99", "p999"]
    head = "| load | offered datagrams/s | events/s | loss |"
    sep = "|---|---|---|---|"
    for s in stages:
        for p in pcts:
            head += f" {s} {p.replace('p999', 'p99.9')} |"
            sep += "---|"
    if not stages:
        head += " latency |"
        sep += "---|"
    lines = [head, sep]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['load_pct']}% | {human(r.get('offered_pps'))} | n/a | n/a | "
                         f"run failed: {r['error'].strip().splitlines()[-1][:120]} |")
            continue
        line = (f"| {r['load_pct']}% | {human(r['offered_pps'])} | "
                f"{human(r.get('events_per_s'))} | {r.get('loss', 0)} |")
        if not stages:
            line += f" n/a: {r.get('na', 'no latency in stats')} |"
        for s in stages:
            st = (r.get("latency") or {}).get(s) or {}
            unit = st.get("unit", "us")
            for p in pcts:
                v = st.get(p)
                line += f" {human(v, unit)} |" if v is not None else " n/a |"
        lines.append(line)
    return lines, stages


def scaling_table(results):
    rows = results.get("scaling", [])
    by_w = {}
    for r in rows:
        by_w.setdefault(r["workers"], []).append(r)
    lines = ["| workers | events/s (median, min–max) | events per server CPU-second | "
             "counters equal the model |", "|---|---|---|---|"]
    points = []
    for w in sorted(by_w):
        ok = [r for r in by_w[w] if "error" not in r]
        if not ok:
            err = by_w[w][0]["error"].strip().splitlines()[-1][:120]
            lines.append(f"| {w} | n/a: run failed: {err} | n/a | n/a |")
            continue
        s = summarize(r["events_per_s"] for r in ok)
        per_cpu = summarize(r.get("events_per_cpu_s") for r in ok)
        correct = all(r.get("correct_counters") for r in ok)
        lines.append(f"| {w} | {cell(s, '/s')} | "
                     f"{cell(per_cpu) or 'n/a: no CPU time recorded'} | "
                     f"{'yes' if correct else 'NO'} |")
        points.append((w, *s))
    return lines, points


def gnuplot(script, cwd):
    try:
        out = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True,
                             cwd=cwd)
    except FileNotFoundError:
        return "gnuplot is not installed (apt-get install gnuplot-nox)"
    return out.stderr.strip() if out.returncode != 0 else None


def plots(results, summary, latency_stages, scaling_points, out_dir, stem):
    """Writes the data files and gnuplot scripts, renders PNGs; returns {name: file|error}."""
    made = {}
    # 1. Throughput by system.
    data = []
    for i, (key, label) in enumerate(SYSTEMS):
        s = summary.get(key, {}).get("events_per_s")
        if s:
            data.append(f'{i} "{label}" {s[0]:.1f} {s[1]:.1f} {s[2]:.1f}')
    if data:
        dat = f"{stem}-throughput.dat"
        with open(os.path.join(out_dir, dat), "w") as f:
            f.write("\n".join(data) + "\n")
        png = f"{stem}-throughput.png"
        err = gnuplot(f"""set terminal pngcairo size 900,500
set output '{png}'
set title 'Events/s sustained by system (median, min-max)'
set style fill solid 0.6
set boxwidth 0.6
set ylabel 'events/s'
set format y '%.1s%c'
set xtics rotate by -25
set grid ytics
plot '{dat}' using 1:3:xtic(2) with boxes notitle, '' using 1:3:4:5 with yerrorbars lc 'black' notitle
""", out_dir)
        made["throughput"] = err or png
    # 2. Latency percentiles by load.
    rows = [r for r in results.get("latency", []) if r.get("latency")]
    if rows and latency_stages:
        dat = f"{stem}-latency.dat"
        cols = []
        with open(os.path.join(out_dir, dat), "w") as f:
            for r in rows:
                vals = [str(r["load_pct"])]
                for s in latency_stages:
                    st = r["latency"].get(s) or {}
                    for p in ("p50", "p99", "p999"):
                        vals.append(str(st.get(p, "NaN")))
                f.write(" ".join(vals) + "\n")
        plotspec = []
        c = 2
        unit = "us"
        for s in latency_stages:
            for p in ("p50", "p99", "p99.9"):
                plotspec.append(f"'{dat}' using 1:{c} with linespoints title '{s} {p}'")
                c += 1
            unit = (rows[0]["latency"].get(s) or {}).get("unit", unit)
        png = f"{stem}-latency.png"
        err = gnuplot(f"""set terminal pngcairo size 900,500
set output '{png}'
set title 'sluice ingest latency by load (kernel UDP path, paced)'
set xlabel 'load, % of measured max rate'
set ylabel 'latency ({unit})'
set logscale y
set grid
set key outside right
plot {", ".join(plotspec)}
""", out_dir)
        made["latency"] = err or png
    else:
        made["latency"] = "no latency percentiles were measured"
    # 3. Scaling.
    if scaling_points:
        dat = f"{stem}-scaling.dat"
        with open(os.path.join(out_dir, dat), "w") as f:
            for w, med, lo, hi in scaling_points:
                f.write(f"{w} {med:.1f} {lo:.1f} {hi:.1f}\n")
        png = f"{stem}-scaling.png"
        err = gnuplot(f"""set terminal pngcairo size 900,500
set output '{png}'
set title 'sluice over DPDK: events/s by worker count'
set xlabel 'workers'
set ylabel 'events/s'
set format y '%.1s%c'
set grid
set xrange [0:*]
set yrange [0:*]
plot '{dat}' using 1:2:3:4 with yerrorlines title 'median (min-max)'
""", out_dir)
        made["scaling"] = err or png
    return made


def microbench_table(results, results_dir):
    mb = results.get("microbench") or {}
    if not mb:
        return ["Microbenchmarks were not run (--skip-microbench)."]
    lines = ["| binary | benchmark | items/s | ns/item |", "|---|---|---|---|"]
    for binary, info in sorted(mb.items()):
        path = os.path.join(results_dir, info["json"])
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            lines.append(f"| {binary} | n/a: no output (exit code {info.get('exit_code')}) | | |")
            continue
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") not in (None, "median"):
                continue
            ips = b.get("items_per_second")
            ns = 1e9 / ips if ips else None
            lines.append(f"| {binary} | `{b['name']}` | {human(ips, '/s')} | "
                         f"{human(ns)} |")
    return lines


def render(results_dir, report_path):
    with open(os.path.join(results_dir, "results.json")) as f:
        results = json.load(f)
    out_dir = os.path.dirname(os.path.abspath(report_path))
    stem = os.path.splitext(os.path.basename(report_path))[0]
    os.makedirs(out_dir, exist_ok=True)
    table, notes, summary = throughput_table(results)
    lat, stages = latency_table(results)
    scal, points = scaling_table(results)
    made = plots(results, summary, stages, points, out_dir, stem)
    m = results.get("machine", {})
    d = results.get("dataset", {})
    cfg = results.get("config", {})
    md = [f"# sluice benchmark: {m.get('host', '?')}, {results.get('started', '?')[:10]}", ""]
    md += [f"Command: `{results.get('command', '?')}`", "",
           f"Dataset: {d.get('events', 0):,} sluice-gen events (seed {d.get('seed')}), "
           f"{d.get('datagrams') or 0:,} datagrams in {d.get('frames') or 0:,} frames; expected "
           f"outcome {json.dumps(d.get('expected', {}))}, {d.get('window_rows', 0):,} window "
           "rows. Every system gets the same events: sluice and the floor the capture's "
           "NDJSON datagrams, the peers each valid event as one line-protocol point.", "",
           f"Repetitions: {cfg.get('reps')} interleaved (each repetition runs every system "
           f"once, in rotated order); sluice throughput runs use {cfg.get('workers')} "
           "worker(s). Cells: median (min–max).", ""]
    md += ["## Throughput, cost, loss, storage, query", ""] + table + [""]
    md += [f"- {n}" for n in notes] + ([""] if notes else [])
    md += ratio_lines(summary) + [""]
    md += ["Definitions: *events/s sustained* = events the system received ÷ seconds from "
           "the first send (sluice over DPDK: from the daemon's start) until it had counted "
           "them all; *per server CPU-second* = events ÷ the receiving process's CPU time "
           "(user + system, all threads) over that interval — for the peers the sender's "
           "CPU is excluded too; *loss* = events sent − events the system counted (for the "
           "peers: points stored; InfluxDB overwrites points with equal series and timestamp, "
           "so a byte-exact duplicate is stored once there); *bytes on disk* = allocated "
           "blocks of the data directory ÷ events stored; *query rows equal to the model* = "
           "share of sluice-gen's expected (minute, page) counts the system's "
           "per-minute-by-page query reproduces exactly (the peers neither deduplicate nor "
           "drop late events).", ""]
    md += ["## Plots", ""]
    for name in ("throughput", "latency", "scaling"):
        v = made.get(name)
        if v and v.endswith(".png"):
            md.append(f"![{name}]({v})")
        else:
            md.append(f"- {name} plot: not drawn ({v or 'no data'})")
    md += ["", "## Latency by load (sluice, kernel UDP path, paced sender)", ""] + lat + [""]
    md += ["## Scaling over workers (sluice over DPDK)", ""] + scal + [""]
    md += ["## Stage microbenchmarks", ""] + microbench_table(results, results_dir) + [""]
    if results.get("notes"):
        md += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    md += ["## Machine", "", f"- nproc: {m.get('nproc')}", f"- kernel: {m.get('kernel')}",
           f"- NIC / PMD: {m.get('nic')}",
           "- versions: " + ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items()),
           "", "```", m.get("lscpu") or "lscpu unavailable", "```", ""]
    with open(report_path, "w") as f:
        f.write("\n".join(md))
    return made


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    made = render(sys.argv[1], sys.argv[2])
    for k, v in made.items():
        if not v.endswith(".png"):
            print(f"report: {k} plot not drawn: {v}", file=sys.stderr)
    print(sys.argv[2])

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
    ("sluice_dpdk_binary", "sluice, DPDK, binary"),
    ("sluice_kernel", "sluice, kernel UDP"),
    ("sluice_kernel_binary", "sluice, kernel UDP, binary"),
    ("sluice_kafka_acks1_none", "sluice, Kafka, acks=1"),
    ("sluice_kafka_acks1_lz4", "sluice, Kafka, acks=1, lz4"),
    ("sluice_kafka_acksall_none", "sluice, Kafka, acks=all"),
    ("sluice_kafka_acksall_lz4", "sluice, Kafka, acks=all, lz4"),
    ("sluice_kafka_acksall_none_idem", "sluice, Kafka, acks=all, idempotent"),
    ("recvmmsg_floor", "recvmmsg floor"),
    ("victoriametrics_udp", "VictoriaMetrics, UDP"),
    ("victoriametrics_http", "VictoriaMetrics, HTTP"),
    ("influxdb_udp", "InfluxDB 1.x, UDP"),
    ("influxdb_http", "InfluxDB 1.x, HTTP"),
    ("clickhouse_mergetree", "ClickHouse, MergeTree"),
    ("clickhouse_replacing", "ClickHouse, ReplacingMergeTree"),
    ("nats_jetstream", "NATS JetStream (broker)"),
]


def is_peer(key):
    return not key.startswith(("sluice", "recvmmsg"))


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


def duration(v, unit):
    """Latencies read best in µs below a millisecond and in ms above."""
    if unit == "us" and v is not None and abs(v) >= 1000:
        return human(v / 1000, "ms")
    return human(v, "µs" if unit == "us" else unit)


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
                why = reason(mine, col)
                if why not in footnotes:  # one footnote per reason
                    footnotes.append(why)
                text = f"n/a [{footnotes.index(why) + 1}]"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"[{i + 1}] {n}" for i, n in enumerate(footnotes)]
    for key, label in SYSTEMS:
        system_notes = sorted({r["note"] for r in runs if r.get("system") == key
                               and r.get("note")})
        if system_notes:
            notes.append(f"{label}: {system_notes[-1]}")
    for key, label in SYSTEMS:
        ok = [r for r in runs if r.get("system") == key and "error" not in r]
        if not is_peer(key) or not ok:
            continue
        text = f"{label}: fed {ok[0].get('transport', '?')}"
        bg = summarize(r.get("background_cpu_s") for r in ok)
        if bg:
            text += (f"; server CPU in the {ok[0].get('background_s', 1):g} s after the last "
                     f"event was taken (deferred merges and flushes, not in the table): "
                     f"{cell(bg, 's')}")
        notes.append(text)
    for key, label in SYSTEMS:
        ok = [r for r in runs if r.get("system") == key and "error" not in r]
        if not key.endswith("_binary") or not ok:
            continue
        counters = sum(1 for r in ok if r.get("correct_counters"))
        compared = [r for r in ok if "same_windows_as_json" in r]
        same = sum(1 for r in compared if r["same_windows_as_json"])
        text = (f"{label}: counters equal the expected outcome in {counters}/{len(ok)} runs; "
                "per-minute-by-page rows identical to the JSON run's ")
        why = next((r["same_windows_as_json_na"] for r in ok if r.get("same_windows_as_json_na")),
                   "no JSON run of sluice produced a result to compare with")
        text += f"in {same}/{len(compared)} runs" if compared else f"not compared ({why})"
        notes.append(text)
    return lines, notes, summary


def ratio_lines(summary):
    out = []

    def med(sys_key, col):
        s = summary.get(sys_key, {}).get(col)
        return s[0] if s else None
    d, k = med("sluice_dpdk", "events_per_cpu_s"), med("sluice_kernel", "events_per_cpu_s")
    db = med("sluice_dpdk_binary", "events_per_cpu_s")
    kb = med("sluice_kernel_binary", "events_per_cpu_s")
    f = med("recvmmsg_floor", "events_per_cpu_s")
    if d and k:
        out.append(f"- sluice DPDK / sluice kernel UDP, events per server CPU-second: "
                   f"**{d / k:.2f}×** (SPEC §7 target: ≥ 3× on JSON)")
    if db and kb:
        out.append(f"- sluice DPDK / sluice kernel UDP, binary, events per server "
                   f"CPU-second: {db / kb:.2f}×")
    if db and d:
        out.append(f"- sluice DPDK, binary / JSON, events per server CPU-second: {db / d:.2f}×")
    if kb and k:
        out.append(f"- sluice kernel UDP, binary / JSON, events per server CPU-second: "
                   f"{kb / k:.2f}×")
    for key, label in SYSTEMS:
        kf = med(key, "events_per_cpu_s")
        if key.startswith("sluice_kafka") and kf and k:
            out.append(f"- {label} / sluice kernel UDP, events per server CPU-second: "
                       f"**{kf / k:.2f}×** (issue 13 target: ≥ 1×)")
    if k and f:
        out.append(f"- sluice kernel UDP / recvmmsg floor, events per CPU-second: "
                   f"{k / f:.2f}× (the floor parses and stores nothing)")
    for peer, label in SYSTEMS:
        p = med(peer, "events_per_cpu_s")
        if d and p and is_peer(peer):
            out.append(f"- sluice DPDK / {label}, events per server CPU-second: {d / p:.1f}×")
    return out


PATH_NAMES = {"kernel": "kernel UDP", "dpdk": "DPDK memif"}


def latency_rows(results):
    """The latency runs, kernel path first; rows of older results (no `path`) are kernel."""
    rows = [dict(r, path=r.get("path", "kernel")) for r in results.get("latency", [])]
    order = list(PATH_NAMES)
    return sorted(rows, key=lambda r: (order.index(r["path"]) if r["path"] in order else 9,
                                       r["load_pct"]))


def latency_side_by_side(rows):
    """p99 RX -> window-visible per path at each load, next to each other (issue 14, 3)."""
    paths = [p for p in PATH_NAMES if any(r["path"] == p for r in rows)]
    if not paths:
        return []
    lines = ["| load | " + " | ".join(f"{PATH_NAMES[p]} window-visible p99" for p in paths)
             + " |", "|---|" + "---|" * len(paths)]
    for pct in sorted({r["load_pct"] for r in rows}):
        cells = []
        for p in paths:
            r = next((x for x in rows if x["path"] == p and x["load_pct"] == pct), None)
            st = ((r or {}).get("latency") or {}).get("window_visible") or {}
            if r is None or r.get("error"):
                cells.append("n/a: run failed" if r else "n/a: not run")
            elif st.get("p99") is None:
                cells.append("n/a: no samples")
            else:
                cells.append(duration(st["p99"], st.get("unit", "us")))
        lines.append(f"| {pct}% | " + " | ".join(cells) + " |")
    return lines


def latency_table(results):
    rows = latency_rows(results)
    if not rows:
        return ["No latency runs: " + "; ".join(results.get("notes", []) or ["not run"])], []
    stages = []
    for r in rows:
        for stage in (r.get("latency") or {}):
            if stage not in stages:
                stages.append(stage)
    pcts = ["p50", "p99", "p999"]
    head = ("| path | load | offered rate | events/s | loss | counters exact | machine load "
            "(1 min) | RX back-pressure waits |")
    sep = "|---|---|---|---|---|---|---|---|"
    for s in stages:
        for p in pcts:
            head += f" {s} {p.replace('p999', 'p99.9')} |"
            sep += "---|"
    if not stages:
        head += " latency |"
        sep += "---|"
    lines = [head, sep]
    for r in rows:
        path = PATH_NAMES.get(r["path"], r["path"])
        offered = f"{human(r.get('offered_pps'))} {r.get('pps_unit', 'datagrams/s')}"
        if r.get("error"):
            rest = " n/a |" * max(0, len(stages) * len(pcts) - 1)
            lines.append(f"| {path} | {r['load_pct']}% | {offered} | n/a | n/a | n/a | n/a | n/a | "
                         f"run failed: {r['error'].strip().splitlines()[-1][:120]} |{rest}")
            continue
        exact = r.get("correct_counters")
        load = r.get("loadavg_1m")
        waits = r.get("rx_backpressure_waits")
        line = (f"| {path} | {r['load_pct']}% | {offered} | "
                f"{human(r.get('events_per_s'))} | {r.get('loss', 0)} | "
                f"{'n/a' if exact is None else ('yes' if exact else 'NO')} | "
                f"{'n/a' if load is None else f'{load:.1f}'} | "
                f"{'n/a' if waits is None else f'{waits:,}'} |")
        if not stages:
            line += f" n/a: {r.get('na', 'no latency in stats')} |"
        for s in stages:
            st = (r.get("latency") or {}).get(s) or {}
            unit = st.get("unit", "us")
            for p in pcts:
                v = st.get(p)
                line += f" {duration(v, unit)} |" if v is not None else \
                    " n/a: no samples at this load |"
        lines.append(line)
    side = latency_side_by_side(rows)
    if side:
        lines += ["", "p99 RX → window-visible, both paths side by side (issue 14 target 3: "
                  "≤ 1 ms at 50%):", ""] + side
    return lines, stages


def kafka_notes(results):
    """What the Kafka rows sent: request sizes, and their ack latency at full load."""
    out = []
    for key, label in SYSTEMS:
        ok = [r for r in results.get("runs", []) if r.get("system") == key and "error" not in r]
        if not key.startswith("sluice_kafka") or not ok:
            continue
        sizes = summarize((r.get("kafka") or {}).get("bytes_per_produce") for r in ok)
        p99 = summarize((r.get("ack_latency") or {}).get("p99") for r in ok)
        counters = sum(1 for r in ok if r.get("correct_counters"))
        out.append(f"{label}: {ok[0].get('producer', '?')}; bytes per Produce request "
                   f"{cell(sizes, 'B') or 'n/a'}; ack p99 at full load "
                   f"{duration(p99[0], 'us') if p99 else 'n/a'}; counters equal the expected "
                   f"outcome in {counters}/{len(ok)} runs")
    return out


def kafka_latency_table(results):
    rows = results.get("kafka_latency", [])
    if not rows:
        return ["Not run (--skip-latency, --skip-kafka, or no Kafka rate measured)."]
    lines = ["| acks | load | offered events/s | events/s | loss | bytes per Produce | "
             "ack p50 | ack p99 | ack p99.9 | max | requests | p99 ≤ 2 group commits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['acks']} | {r['load_pct']}% | {human(r.get('offered_eps'))} | "
                         f"n/a: run failed: {r['error'].strip().splitlines()[-1][:120]} |"
                         + " n/a |" * 8)
            continue
        lat = r.get("latency") or {}
        within = "n/a"
        if r["acks"] == "all" and lat.get("p99") is not None:
            bound_us = 2 * r.get("flush_interval_ms", 100) * 1000
            within = ("yes" if lat["p99"] <= bound_us else "NO") + \
                f" (2 × {r.get('flush_interval_ms', 100)} ms)"
        cells = [duration(lat.get(p), "us") if lat.get(p) is not None else "n/a: no samples"
                 for p in ("p50", "p99", "p999", "max")]
        lines.append(f"| {r['acks']} | {r['load_pct']}% | {human(r['offered_eps'])} | "
                     f"{human(r.get('events_per_s'))} | {r.get('loss', 0)} | "
                     f"{human(r.get('bytes_per_produce'), 'B')} | " + " | ".join(cells) +
                     f" | {lat.get('count', 0)} | {within} |")
    return lines


def scaling_table(results):
    rows = results.get("scaling", [])
    if not rows:
        return ["Not run (--skip-scaling)."], []
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


def interference_table(results):
    rows = results.get("interference", [])
    if not rows:
        return ["Not run (--hammer-clients 0)."]
    lines = ["| control clients | events/s (median, min–max) | events per server CPU-second | "
             "control replies during the run | counters equal the model |",
             "|---|---|---|---|---|"]
    for c in sorted({r["clients"] for r in rows}):
        mine = [r for r in rows if r["clients"] == c]
        ok = [r for r in mine if "error" not in r]
        if not ok:
            err = mine[0]["error"].strip().splitlines()[-1][:120]
            lines.append(f"| {c} | n/a: run failed: {err} | n/a | n/a | n/a |")
            continue
        replies = [r.get("control_replies") or {} for r in ok]
        rep_text = "none (no clients)" if c == 0 else ", ".join(
            f"{k} {sum(x.get(k, 0) for x in replies):,}" for k in ("ok", "error", "failed"))
        lines.append(f"| {c} | {cell(summarize(r['events_per_s'] for r in ok), '/s')} | "
                     f"{cell(summarize(r.get('events_per_cpu_s') for r in ok)) or 'n/a: no CPU time recorded'} | {rep_text} | "
                     f"{'yes' if all(r.get('correct_counters') for r in ok) else 'NO'} |")
    return lines


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
    # 1. Throughput and cost by system.
    for name, col, title, ylabel in (
            ("throughput", "events_per_s", "Events/s sustained by system", "events/s"),
            ("cpu", "events_per_cpu_s", "Events per server CPU-second by system",
             "events per CPU-second")):
        data = []
        for key, label in SYSTEMS:  # side by side: no gaps for systems not run
            s = summary.get(key, {}).get(col)
            if s:
                data.append(f'{len(data)} "{label}" {s[0]:.1f} {s[1]:.1f} {s[2]:.1f}')
        if not data:
            continue
        dat = f"{stem}-{name}.dat"
        with open(os.path.join(out_dir, dat), "w") as f:
            f.write("\n".join(data) + "\n")
        png = f"{stem}-{name}.png"
        err = gnuplot(f"""set terminal pngcairo size 900,500
set output '{png}'
set title '{title} (median, min-max)'
set style fill solid 0.6
set boxwidth 0.6
set ylabel '{ylabel}'
set format y '%.1s%c'
set xtics rotate by -25
set rmargin 16
set yrange [0:*]
set bmargin 7
set grid ytics
plot '{dat}' using 1:3:xtic(2) with boxes notitle, '' using 1:3:4:5 with yerrorbars lc 'black' notitle
""", out_dir)
        made[name] = err or png
    # 2. Latency percentiles by load.
    rows = [r for r in latency_rows(results) if r.get("latency")]
    if rows and latency_stages:
        plotspec = []
        unit = "us"
        for path in dict.fromkeys(r["path"] for r in rows):
            dat = f"{stem}-latency-{path}.dat"
            with open(os.path.join(out_dir, dat), "w") as f:
                for r in rows:
                    if r["path"] != path:
                        continue
                    vals = [str(r["load_pct"])]
                    for s in latency_stages:
                        st = r["latency"].get(s) or {}
                        for p in ("p50", "p99", "p999"):
                            vals.append(str(st.get(p, "NaN")))
                    f.write(" ".join(vals) + "\n")
            c = 2
            for s in latency_stages:
                for p in ("p50", "p99", "p99.9"):
                    plotspec.append(f"'{dat}' using 1:{c} with linespoints "
                                    f"title '{PATH_NAMES.get(path, path)} {s} {p}' noenhanced")
                    c += 1
                unit = (rows[0]["latency"].get(s) or {}).get("unit", unit)
        png = f"{stem}-latency.png"
        err = gnuplot(f"""set terminal pngcairo size 1000,550
set output '{png}'
set title 'sluice ingest latency by load (kernel UDP and DPDK memif paths, paced)'
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
            lines.append(f"| {binary} | n/a: no output (exit code {info.get('exit_code')}) | "
                         "n/a | n/a |")
            continue
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") not in (None, "median"):
                continue
            ips = b.get("items_per_second")
            bps = b.get("bytes_per_second")
            if b.get("error_occurred"):
                rate = f"n/a: error: {str(b.get('error_message', '?'))[:120]}"
            elif ips:
                rate = human(ips, "/s")
            elif bps:
                rate = f"n/a: counts bytes, {human(bps, 'B/s')}"
            else:
                rate = "n/a: counts no items"
            ns = human(1e9 / ips) if ips and not b.get("error_occurred") else "n/a"
            lines.append(f"| {binary} | `{b['name']}` | {rate} | {ns} |")
    return lines


def phases_table(results):
    phases = results.get("phases") or []
    if not phases:
        return ["Not recorded by this run."]
    lines = ["| phase | wall time |", "|---|---|"]
    for ph in phases:
        took = f"{ph['seconds']:.1f} s" if ph.get("seconds") is not None \
            else f"skipped ({ph.get('skipped', 'not run')})"
        lines.append(f"| {ph['phase']} | {took} |")
    total = sum(ph["seconds"] for ph in phases if ph.get("seconds") is not None)
    lines.append(f"| **total** | **{total:.1f} s** ({total / 60:.1f} min) |")
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
           "NDJSON datagrams; the peers each event sluice parses as valid, VictoriaMetrics "
           "and InfluxDB as one line-protocol point, ClickHouse as one JSONEachRow row "
           "(typed fields, event time in ms, `metadata` as text), NATS as one message (the "
           "event's bytes) with Nats-Msg-Id = sluice's dedup identity.", ""]
    card = d.get("cardinality")
    if card:
        md += [f"Cardinality: {card.get('events') or 0:,} valid events, "
               f"{card.get('distinct_ids') or 0:,} distinct identities, "
               f"{card.get('pages') or 0:,} distinct pages, {card.get('series') or 0:,} "
               "(page, event_type) series — what the time-series peers index.", ""]
    b = d.get("binary")
    if b:
        md += [f"Binary rows: the same events as sluice's binary batches (docs/BINARY.md), "
               f"converted from the NDJSON capture by sluice-blast: {b.get('events', 0):,} "
               f"records in {b.get('datagrams', 0):,} datagrams ({b.get('pcap_bytes', 0):,} "
               f"bytes of capture against {d.get('pcap_bytes', 0):,} for NDJSON); the "
               f"{b.get('left_out', 0):,} lines sluice dead-letters at RX (malformed, oversize, "
               "future) have no binary form and are left out, so the expected outcome is "
               f"{json.dumps(b.get('expected', {}))} with the JSON stream's windows.", ""]
    md += [
           f"Repetitions: {cfg.get('reps')} interleaved (each repetition runs every system "
           f"once, in rotated order); sluice throughput runs use {cfg.get('workers')} "
           "worker(s). Cells: median (min–max).", ""]
    md += ["## Throughput, cost, loss, storage, query", ""] + table + [""]
    md += [f"- {n}" for n in notes] + ([""] if notes else [])
    md += [f"- {n}" for n in kafka_notes(results)]
    md += ratio_lines(summary) + [""]
    md += ["Definitions: *events/s sustained* = events the system received ÷ seconds from "
           "the first send (sluice over DPDK: from the daemon's start) until it had counted "
           "them all; *per server CPU-second* = events ÷ the receiving process's CPU time "
           "(user + system, all threads) over that interval — for the peers the sender's "
           "CPU is excluded too; *loss* = events sent − events the system counted (for the "
           "peers: points stored; InfluxDB overwrites points with equal series and timestamp, "
           "so a byte-exact duplicate is stored once there; ClickHouse MergeTree: rows sent − "
           "rows stored; ReplacingMergeTree and NATS JetStream: distinct identities − rows or "
           "messages stored); *bytes on disk* = allocated "
           "blocks of the data directory ÷ events stored; *query rows equal to the model* = "
           "share of sluice-gen's expected (minute, page) counts the system's "
           "per-minute-by-page query reproduces exactly (no peer drops late events from its "
           "counts; only ReplacingMergeTree, read with FINAL, deduplicates).", ""]
    md += ["## Plots", ""]
    for name in ("throughput", "cpu", "latency", "scaling"):
        v = made.get(name)
        if v and v.endswith(".png"):
            md.append(f"![{name}]({v})")
        else:
            md.append(f"- {name} plot: not drawn ({v or 'no data'})")
    md += ["", "## Latency by load (sluice, kernel UDP and DPDK paths, paced senders)", "",
           "From sluiced's own `stats.latency` histograms: per accepted event, from its RX "
           "burst's stamp to the event being in its window (window_visible) and to its row "
           "fsynced (durable). Kernel path: sluice-blast sends the capture's datagrams over "
           "loopback UDP at a % of the kernel row's median datagrams/s; DPDK path: "
           "sluice-gen sends the dataset's frames over net_memif at a % of the DPDK "
           "(net_pcap) row's median frames/s (transports in this run: "
           + "; ".join(sorted({r["transport"] for r in results.get("latency", [])
                               if r.get("transport")}) or ["none recorded"]) +
           "). A row's events/s below its offered rate means the sender or sluiced fell "
           "behind: that row is not at its nominal load.", ""] + lat + [""]
    md += ["## Kafka produce-ack latency by load (paced confluent-kafka producer)", "",
           "From sluiced's own `stats.kafka.ack_latency` (docs/KAFKA.md): from the request's "
           "arrival (the receive that completed its frame) to its answer queued (acks=1) or "
           "queued after the group commit's fdatasync (acks=all). Loads are % of the "
           "unpaced Kafka row's median events/s for the same acks, no compression; the "
           "producer lingers up to 5 ms, so at low load its requests are smaller than "
           "at full load.", ""] + kafka_latency_table(results) + [""]
    md += ["## Scaling over workers (sluice over DPDK)", ""] + scal + [""]
    md += ["## Control-plane load vs the data path (sluice over DPDK)", "",
           "The same run with no control client and with many clients each asking `stats` "
           "back to back on its own connection (sluiced rate-limits them and answers "
           "`rate limited` errors beyond its limits). On a machine with few cores the "
           "clients' own CPU competes with the lcores.", ""] + interference_table(results) + [""]
    md += ["## Stage microbenchmarks", ""] + microbench_table(results, results_dir) + [""]
    md += ["## Run time by phase", ""] + phases_table(results) + [""]
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

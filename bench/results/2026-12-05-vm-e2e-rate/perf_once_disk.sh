#!/bin/bash
# perf profile of one read-once JSON run with the store on disk (e2e_rate.py's once-disk:
# 1 RX + 1 worker lcore, --lcores 0@0,1@0,2@1, [input] mbufs = 16384), recorded for a fixed
# time once sluiced answers (perf's SIGINT stop did not return on this VM), DWARF call
# graphs so that bench/processing/worker_profile_split.py can split the worker's stages.
# Run from the repository root: perf_once_disk.sh BUILD EVENTS SECONDS OUTDIR [FORMAT]
set -eu
b=$1; n=$2; secs=$3; out=$4; fmt=${5:-json}
tmp=$(mktemp -d /tmp/sluice-e2e-perf-XXXXXX)
mkdir -p "$out"
"$b/tools/sluice-gen" --events "$n" --seed 7 --out "$tmp/gen" --format "$fmt" \
  --now-ms "$(date +%s%3N)" > /dev/null
printf '[input]\nmbufs = 16384\n' > "$tmp/sluiced.toml"
"$b/control/sluiced" --no-huge --no-pci -m 2048 --file-prefix "e2e-perf-$$" \
  --lcores 0@0,1@0,2@1 --log-level '*:warning' --vdev "net_pcap0,rx_pcap=$tmp/gen/events.pcap" \
  -- --data-dir "$tmp/data" --control-socket "$tmp/ctl.sock" --workers 1 --rx 1 \
  --config "$tmp/sluiced.toml" > "$tmp/sluiced.log" 2>&1 &
pid=$!
ctl() { python3 -c "import sys; sys.path.insert(0, 'bench/e2e'); from harness import control; import json; print(json.dumps(control('$tmp/ctl.sock', '$1')))"; }
until ctl status > /dev/null 2>&1; do sleep 0.05; done
perf record -q -e cpu-clock -F 999 --call-graph dwarf,8192 -p "$pid" -o "$tmp/perf.data" -- sleep "$secs" \
  > /dev/null 2>&1
ctl stats > "$out/perf_stats_after.json"
ctl shutdown > /dev/null || true
wait "$pid" || true
perf report -i "$tmp/perf.data" --no-children --sort comm --stdio 2> /dev/null > "$out/perf_threads.txt"
perf report -i "$tmp/perf.data" --no-children --comm rte-worker-2 --sort sym --stdio \
  --percent-limit 0.5 -g none 2> /dev/null > "$out/perf_worker_flat.txt"
perf script -i "$tmp/perf.data" --comm rte-worker-2 2> /dev/null > "$tmp/worker.txt"
python3 bench/processing/worker_profile_split.py "$tmp/worker.txt" > "$out/perf_worker_split.txt"
rm -rf "$tmp" "/var/run/dpdk/e2e-perf-$$"

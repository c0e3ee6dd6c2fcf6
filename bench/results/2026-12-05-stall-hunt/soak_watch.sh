#!/bin/bash
# Cycles of: 3 CPU hogs for 170 s while stall_watch.py watches 6 runs of 18 s, then 4 runs
# of 15 s without hogs. Run from the repository root: soak_watch.sh BUILD OUTDIR [CYCLES]
set -u
build=${1:-build-release}; out=${2:-/tmp/stall-watch}; cycles=${3:-3}
here=$(dirname "$0"); mkdir -p "$out"
for c in $(seq 1 "$cycles"); do
  echo "cycle $c $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) io $(head -1 /proc/pressure/io)"
  "$here/hogs.sh" 170
  timeout 175 /usr/bin/python3 bench/dataplane/stall_watch.py --build "$build" --runs 6 --seconds 18 --out "$out/$c-hog.json" 2>&1 | grep -v "^\["
  timeout 90 /usr/bin/python3 bench/dataplane/stall_watch.py --build "$build" --runs 4 --seconds 15 --out "$out/$c-nohog.json" 2>&1 | grep -v "^\["
done
echo "end $(date -u +%T)"

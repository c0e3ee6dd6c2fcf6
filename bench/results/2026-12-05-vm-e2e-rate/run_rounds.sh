#!/bin/bash
# Interleaved rounds of bench/dataplane/e2e_rate.py: main's release build ("new") and
# e1b0e91's, the commit behind the 2026-11-27 e2e table ("old"), alternating which goes
# first. Run from the repository root at normal priority:
#   bench/results/2026-12-05-vm-e2e-rate/run_rounds.sh ROUNDS NEW_BUILD OLD_BUILD [ONLY]  (FIRST=K: first round number; EVENTS=N: read-once capture size, default 1000000; OUT=DIR: where the files go)
set -u
rounds=$1; new=$2; old=$3
only=${4:-once-disk,once-tmpfs,inf-dedup}
events=${EVENTS:-1000000}
out=${OUT:-bench/results/2026-12-05-vm-e2e-rate}; mkdir -p "$out"
for r in $(seq "${FIRST:-1}" "$rounds"); do
  if (( r % 2 )); then order="new old"; else order="old new"; fi
  for v in $order; do
    b=$new; [ "$v" = old ] && b=$old
    [ -x "$b/control/sluiced" ] || continue
    echo "round $r $v start $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/rounds.log"
    bench/dataplane/e2e_rate.py --build "$b" --only "$only" --events "$events" --out "$out/$v-$r.json" \
      > "$out/$v-$r.md" 2> "$out/$v-$r.log"
    rc=$?
    echo "round $r $v end   $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg) rc $rc" | tee -a "$out/rounds.log"
  done
done

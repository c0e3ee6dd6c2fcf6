#!/bin/bash
# Interleaved A/B of [lcores] idle (docs/benchmarks.md, "Idle workers and merger block on an
# eventfd"): the same binary with poll.toml (the sleeping back-off everywhere, as before the
# Kafka RX blocked) and wait.toml (the default: Kafka RX, workers and merger block),
# alternately; each run has the kernel UDP row and the two acks=all Kafka rows.
# Usage: ab.sh BUILD FIRST_RUN ROUNDS [EVENTS]
set -u
BUILD=$1; FIRST=$2; ROUNDS=$3; EVENTS=${4:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
n=$FIRST
for ((r = 0; r < ROUNDS; ++r)); do
  for v in poll wait; do
    echo "$(date -u +%T) run $n $v load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
    nice -n 0 /usr/bin/python3 bench/e2e/harness.py --build "$BUILD" \
      --out "$HERE/ab-$n-$v" --events "$EVENTS" --reps 1 --skip-peers --skip-scaling \
      --skip-latency --hammer-clients 0 --skip-microbench --sluiced-config "$HERE/$v.toml" \
      --systems sluice_kernel,sluice_kafka_acksall_none,sluice_kafka_acksall_none_idem \
      > "/tmp/ab-$n-$v.log" 2>&1
    echo "$(date -u +%T) done $n rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
    n=$((n + 1))
  done
done

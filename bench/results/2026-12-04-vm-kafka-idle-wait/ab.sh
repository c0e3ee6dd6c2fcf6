#!/bin/bash
# Interleaved A/B of the idle Kafka RX (docs/benchmarks.md, "Kafka acks=all: the idle
# Kafka RX blocks in io_uring"): the same binary, SLUICE_KAFKA_IDLE_WAIT=0 (poll: the
# nanosleep back-off) and =1 (wait), alternately; each run also has the kernel UDP row.
# Usage: ab.sh BUILD FIRST_RUN ROUNDS [EVENTS]
set -u
BUILD=$1; FIRST=$2; ROUNDS=$3; EVENTS=${4:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
n=$FIRST
for ((r = 0; r < ROUNDS; ++r)); do
  for v in poll wait; do
    [ $v = poll ] && iw=0 || iw=1
    echo "$(date -u +%T) run $n $v load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
    SLUICE_KAFKA_IDLE_WAIT=$iw nice -n 0 /usr/bin/python3 bench/e2e/harness.py --build "$BUILD" \
      --out "$HERE/ab-$n-$v" --events "$EVENTS" --reps 1 --skip-peers --skip-scaling \
      --skip-latency --hammer-clients 0 --skip-microbench \
      --systems sluice_kernel,sluice_kafka_acksall_none,sluice_kafka_acksall_none_idem \
      > "/tmp/ab-$n-$v.log" 2>&1
    echo "$(date -u +%T) done $n rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
    n=$((n + 1))
  done
done

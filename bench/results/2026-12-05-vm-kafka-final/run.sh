#!/bin/bash
# Item 9's final rows (docs/benchmarks.md, "Kafka produce: final item-9 rows"): one
# harness invocation per round, each with the kernel UDP row and the Kafka rows
# (acks=1/all x none/lz4, and acks=all idempotent) interleaved (--reps, rotated order),
# then the kernel UDP latency runs and the Kafka produce-ack latency runs at 10/50/90 %
# of the round's own unpaced Kafka rates. The load average is sampled every 5 s meanwhile.
# Usage: run.sh BUILD OUT_NAME REPS [EVENTS]
set -u
BUILD=$1; NAME=$2; REPS=$3; EVENTS=${4:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
( while :; do echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 5; done ) \
    >> "$HERE/$NAME-load.log" &
SAMPLER=$!
echo "$(date -u +%T) start $NAME reps $REPS load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
/usr/bin/python3 bench/e2e/harness.py --build "$BUILD" --out "$HERE/$NAME" --events "$EVENTS" \
    --reps "$REPS" --skip-peers --skip-scaling --hammer-clients 0 --skip-microbench \
    --systems sluice_kernel,sluice_kafka_acks1_none,sluice_kafka_acks1_lz4,sluice_kafka_acksall_none,sluice_kafka_acksall_lz4,sluice_kafka_acksall_none_idem \
    > "$HERE/$NAME.log" 2>&1
rc=$?
echo "$(date -u +%T) done $NAME rc $rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$HERE/runs.log"
kill "$SAMPLER"

#!/bin/bash
# Usage: [SLUICED=path] [IDLE=wait|poll] NDJSON=events.ndjson profile_run.sh IDEM(0|1) LINES [perf]
# One sluiced (release build in build/ or $SLUICED, lcores 0@0,1@0,2@1, one worker,
# [lcores] idle = $IDLE, default "wait") and one kcat with the
# harness's settings and acks=all; prints kcat seconds, sluiced CPU seconds over the kcat run,
# counters and the acks=all ack p50/p99; with "perf", perf record -F 999 -g -p during the run.
set -u
cd "$(dirname "$0")/../../.."
IDEM=$1; LINES=$2; PERF=${3:-}; IW=${IDLE:-wait}
D=$(mktemp -d /tmp/acksprof.XXXX); PORT=$((20000 + RANDOM % 20000))
printf '[lcores]\nidle = "%s"\n' "$IW" > $D/sluiced.toml
${SLUICED:-build/control/sluiced} --no-huge --no-pci -m 1024 --file-prefix prof-$$ \
  --lcores 0@0,1@0,2@1 --log-level '*:warning' -- --config $D/sluiced.toml --data-dir $D/data \
  --control-socket $D/ctl.sock --workers 1 --kafka 127.0.0.1:$PORT > $D/log 2>&1 &
PID=$!
for i in $(seq 300); do grep -q "control socket" $D/log 2>/dev/null && break; sleep 0.1; done
sleep 0.5
idem=(); [ $IDEM = 1 ] && idem=(-X enable.idempotence=true)
if [ -n "$PERF" ]; then perf record -F 999 -g -p $PID -o $D/perf.data > /dev/null 2>&1 & PP=$!; sleep 0.3; fi
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$PID/stat)
t0=$(date +%s.%N)
head -n $LINES ${NDJSON:-/tmp/acks-events.ndjson} | kcat -P -b 127.0.0.1:$PORT -t events-topic -p 0 -z none -X acks=all "${idem[@]}" \
  -X batch.size=1000000 -X linger.ms=5 -X max.in.flight.requests.per.connection=5 \
  -X queue.buffering.max.messages=2000000 -X queue.buffering.max.kbytes=2097151
t1=$(date +%s.%N)
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$PID/stat)
[ -n "$PERF" ] && { kill -INT $PP; wait $PP; }
cpu=$(echo "($u1 + $s1 - $u0 - $s0) / 100" | bc -l)
stats=$(python3 -c "
import sys; sys.path.insert(0, 'bench/e2e'); from harness import control
d = control('$D/ctl.sock', 'stats'); k = d.get('kafka') or {}; a = (k.get('ack_latency') or {}).get('all') or {}
t = d['totals']; print('recv', t['events_received'], 'acc', t['events_accepted'], 'dup', t['duplicates'], 'late', t['late_events'], 'dead', t['dead_letters'], 'p50_us', a.get('p50_us'), 'p99_us', a.get('p99_us'), 'produce', (k.get('requests_by_api') or {}).get('produce'))" 2>&1 | tail -1)
printf "iw=%s idem=%s lines=%s kcat_s=%.2f cpu_s=%.2f ev_per_cpu_s=%.0f %s load %s\n" $IW $IDEM $LINES $(echo "$t1 - $t0" | bc -l) $cpu $(echo "$LINES / $cpu" | bc -l) "$stats" "$(cut -d' ' -f1 /proc/loadavg)"
kill $PID; wait $PID 2>/dev/null
[ -n "$PERF" ] && echo "kept: $D" || rm -rf $D

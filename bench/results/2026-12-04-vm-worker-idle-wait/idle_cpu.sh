#!/bin/bash
# CPU an idle sluiced burns: one sluiced started like the harness's rows (lcores
# 0@0,1@0,2@1: main and the RX on CPU 0, one worker on CPU 1), with the Kafka listener
# alone (INPUT kafka, as the Kafka rows) or kernel UDP (INPUT kernel, as the sluice_kernel
# row), no input at all; utime + stime from /proc over SECONDS.
# Usage: idle_cpu.sh BUILD poll|wait kafka|kernel [SECONDS]
set -u
cd "$(dirname "$0")/../../.."
BUILD=$1; V=$2; INPUT=$3; SECS=${4:-10}
HERE=bench/results/2026-12-04-vm-worker-idle-wait
D=$(mktemp -d /var/tmp/idlecpu.XXXX); PORT=$((20000 + RANDOM % 20000))
$BUILD/control/sluiced --no-huge --no-pci -m 1024 --file-prefix idle-$$ --lcores 0@0,1@0,2@1 \
  --log-level '*:warning' -- --data-dir $D/data --control-socket $D/ctl.sock --workers 1 \
  $([ $INPUT = kafka ] && echo --kafka 127.0.0.1:$PORT || echo --kernel-udp 127.0.0.1 --udp-port $PORT) \
  --config $HERE/$V.toml > $D/log 2>&1 &
PID=$!
for i in $(seq 300); do grep -q "control socket" $D/log && break; sleep 0.1; done
sleep 2
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$PID/stat)
sleep $SECS
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$PID/stat)
cpu=$(echo "($u1 + $s1 - $u0 - $s0) / $(getconf CLK_TCK)" | bc -l)
printf "%s %s idle %ss: sluiced cpu_s=%.3f (%.1f%% of one CPU) load %s\n" $V $INPUT $SECS $cpu \
  $(echo "100 * $cpu / $SECS" | bc -l) "$(cut -d' ' -f1 /proc/loadavg)"
kill $PID; wait $PID 2>/dev/null
rm -rf $D

#!/bin/bash
# usage: prof.sh PATH PPS EVENTS OUT   (PATH: kernel or dpdk; as root, from anywhere)
# One paced run (one.py) under perf: uprobes on the worker's block seal and the
# scheduler's switch/wakeup events, system-wide. The probes, once per build:
#   B=build/control/sluiced; A=$(nm $B | awk '/_ZN6sluice7storage14segment_writer4sealEb/{print "0x"$1}')
#   perf probe -x $B --add "seal=$A"; perf probe -x $B --add "seal_ret=$A%return"
# ana.py OUT.perf.txt then prints seal durations and each thread's wakeup->run delays.
export SLUICE_REPO=${SLUICE_REPO:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
HERE=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$HERE/one.py" $1 $2 $3 > $4.json 2> $4.log &
PY=$!
for i in $(seq 1 600); do
  P=$(pgrep -P $PY -x sluiced | head -1); [ -n "$P" ] && break; sleep 0.1
done
# wait until the control socket is up-ish
sleep 1
perf record -q -o $4.perf.data -e probe_sluiced:seal -e probe_sluiced:seal_ret__return -e sched:sched_switch -e sched:sched_wakeup -a 2>/dev/null &
PERF=$!
wait $PY
kill -INT $PERF 2>/dev/null; wait $PERF 2>/dev/null
perf script -i $4.perf.data -F comm,tid,cpu,time,event,trace 2>/dev/null > $4.perf.txt

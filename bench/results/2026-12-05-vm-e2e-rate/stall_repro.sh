#!/bin/bash
# repro: inf-dedup binary, sample totals every 0.5 s for 6 s; on a stall, gdb stacks
cd /work/wt-kafka-model
T=/tmp/e2e-stall; mkdir -p $T
[ -f $T/gen/events.pcap ] || build-release/tools/sluice-gen --events 20000 --seed 7 --out $T/gen --format binary --now-ms $(date +%s%3N) >/dev/null
printf '[input]\nmbufs = 16384\n' > $T/s.toml
for i in 1 2 3 4; do
  rm -rf $T/data $T/ctl.sock
  build-release/control/sluiced --no-huge --no-pci -m 2048 --file-prefix e2e-stall --lcores 0@0,1@0,2@1 --log-level '*:warning' --vdev net_pcap0,rx_pcap=$T/gen/events.pcap,infinite_rx=1 -- --data-dir $T/data --control-socket $T/ctl.sock --workers 1 --rx 1 --config $T/s.toml > $T/log-$i 2>&1 &
  pid=$!
  python3 - $T/ctl.sock $pid $i <<'PY'
import sys, time, subprocess; sys.path.insert(0,'bench/e2e'); from harness import control
s, pid, i = sys.argv[1], sys.argv[2], sys.argv[3]
while True:
    try:
        if control(s,'status').get('ok'): break
    except OSError: pass
    time.sleep(0.1)
prev=None; stalled=0
for k in range(12):
    t=control(s,'stats')['totals']
    done=t['events_accepted']+t['duplicates']+t['dead_letters']
    print(i, k, {x:t.get(x) for x in ('events_received','events_accepted','duplicates','dead_letters','rx_packets','backpressure_waits','rows_durable')}, flush=True)
    if prev is not None and done==prev: stalled+=1
    prev=done; time.sleep(0.5)
if stalled>=3:
    print('STALLED', flush=True)
    print(subprocess.run(['gdb','-p',pid,'-batch','-ex','thread apply all bt 12'],capture_output=True,text=True).stdout[-6000:])
control(s,'shutdown')
PY
  wait $pid
done
rm -rf /var/run/dpdk/e2e-stall

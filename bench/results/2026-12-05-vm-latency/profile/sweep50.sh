#!/bin/bash
# default (100) vs [storage] flush_interval_ms = 50, 25, 10 at the kernel path's ~50% (55,000 datagrams/s),
# interleaved, 3 rounds (one.py; prints p99 window-visible and bytes per event)
cd "$(dirname "$0")"; export SLUICE_REPO=${SLUICE_REPO:-$(git rev-parse --show-toplevel)}
for round in 1 2 3; do
  for cfg in default fi50 fi25 fi10; do
    c=""; [ $cfg != default ] && c=$PWD/$cfg.toml
    out=$(/usr/bin/python3 one.py kernel 55000 300000 $c 2>/dev/null | tail -1)
    echo "$round $cfg $(cut -d' ' -f1 /proc/loadavg) $out" | python3 -c "
import sys,json
l=sys.stdin.read().split(' ',3)
try: j=json.loads(l[3])
except ValueError: print(l[0],l[1],'load',l[2],'no result'); sys.exit()
print(l[0],l[1],'load',l[2],'p50 %.3f p99 %.2f p999 %.2f ms'%(j['wv']['p50']/1e3,j['wv']['p99']/1e3,j['wv']['p999']/1e3),'B/ev %.2f'%j['bytes_per_event'],'syncs',j['syncs'],'exact',j['correct'],j['query_correct'],'ev/s %.0f'%j['events_per_s'])"
  done
done

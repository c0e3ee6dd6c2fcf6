#!/bin/bash
# interleaved A/B/C: default, flush_interval_ms=10, compression=lz4 at kernel 10% and 50%
cd "$(dirname "$0")"; export SLUICE_REPO=${SLUICE_REPO:-$(git rev-parse --show-toplevel)}
for round in 1 2 3; do
  for pps in 11000 55000; do
    for cfg in default fi10 lz4; do
      c=""; [ $cfg != default ] && c=$PWD/$cfg.toml
      out=$(/usr/bin/python3 one.py kernel $pps 300000 $c 2>/dev/null | tail -1)
      echo "$round $pps $cfg $(cut -d' ' -f1 /proc/loadavg) $out" | python3 -c "
import sys,json; l=sys.stdin.read().split(' ',4); j=json.loads(l[4]); j.pop('sched')
print(l[0],l[1],l[2],'load',l[3],'p50 %.3f p99 %.2f p999 %.2f ms'%(j['wv']['p50']/1e3,j['wv']['p99']/1e3,j['wv']['p999']/1e3),'durable p50 %.1f p99 %.1f'%(j['durable']['p50']/1e3,j['durable']['p99']/1e3),'B/ev %.2f'%j['bytes_per_event'],'syncs',j['syncs'],'exact',j['correct'],j['query_correct'],'ev/s %.0f'%j['events_per_s'])"
    done
  done
done

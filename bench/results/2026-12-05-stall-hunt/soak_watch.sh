#!/bin/bash
# 3 cycles: 3 CPU hogs for 170 s while stall_watch runs, then 60 s without hogs
cd /work/wt-tsan
for c in 1 2 3; do
  echo "cycle $c $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg) io $(head -1 /proc/pressure/io)"
  /tmp/hogs.sh 170
  timeout 175 /usr/bin/python3 bench/dataplane/stall_watch.py --build build --runs 8 --seconds 18 --out /tmp/soak2-$c-hog.json 2>&1 | grep -v "^\[" 
  timeout 90 /usr/bin/python3 bench/dataplane/stall_watch.py --build build --runs 4 --seconds 15 --out /tmp/soak2-$c-nohog.json 2>&1 | grep -v "^\["
done
echo "end $(date -u +%T)"

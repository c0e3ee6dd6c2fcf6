#!/bin/bash
out=$1; reps=${2:-5}; mkdir -p $out
for i in $(seq 1 $reps); do
  for v in ${VERSIONS:-before after}; do
    nice /tmp/binraw/ceb.$v --benchmark_filter="$FILTER" --benchmark_min_time=0.3 --benchmark_format=json > $out/$v.$i.json 2>/dev/null
  done
done

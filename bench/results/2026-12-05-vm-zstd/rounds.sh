#!/bin/sh
# Interleaved rounds of the zstd sweep (zstd_sweep.c) and the skeleton-dictionary
# prototype on the two `raw` inputs; one log per round. Usage: rounds.sh N OUTDIR
# Level 1 runs first and again last in each list (the order's own effect shows).
# Inputs in the current directory: seed.chunk and gen.chunk (the raw chunks dumped by
# dump_chunks_shim.c from worker_bench and from column_encode_bench's bm_encode_gen_block),
# seedsk.{bin,len} and gensk.{bin,len} (split_skeletons.py).
n=$1; out=$2; mkdir -p "$out"
CONFIGS="1 0 0 0 0 0 0 -1 0  -1 0 0 0 0 0 0 -1 0  -3 0 0 0 0 0 0 -1 0  -5 0 0 0 0 0 0 -1 0  3 0 0 0 0 0 0 -1 0  1 0 0 12 0 0 0 -1 0  1 0 0 16 0 0 0 -1 0  1 0 0 0 0 0 7 -1 0  1 0 17 0 0 0 0 -1 0  1 0 0 0 0 0 0 -1 2  1 0 0 0 0 0 0 -1 0"
for r in $(seq 1 "$n"); do
  {
    echo "round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== seed chunk"; ./zsweep seed.chunk 16384 $CONFIGS
    echo "== gen chunk"; ./zsweep gen.chunk 16384 $CONFIGS
    echo "== seed dict"; ./skproto seedsk.bin seedsk.len
    echo "== gen dict"; ./skproto gensk.bin gensk.len
  } > "$out/round_$r.txt"
done

#!/bin/sh
# Runs every stage microbenchmark of a release build, one after the other (never in
# parallel: they share the machine's cores), writing one JSON file per binary.
# Usage: bench/run_benchmarks.sh BUILD_DIR OUT_DIR [extra Google Benchmark flags]
set -eu
build=${1:?usage: $0 BUILD_DIR OUT_DIR [flags]}
out=${2:?usage: $0 BUILD_DIR OUT_DIR [flags]}
shift 2
mkdir -p "$out"
for b in frame_parse_bench event_parse_bench rx_path_bench identity_bench ring_handoff_bench \
         dedup_filter_bench window_bench worker_bench column_encode_bench segment_writer_bench \
         latency_histogram_bench table_scan_bench io_placement_bench; do
    echo "== $b" >&2
    "$build/bench/$b" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true \
        --benchmark_out="$out/$b.json" --benchmark_out_format=json "$@"
done

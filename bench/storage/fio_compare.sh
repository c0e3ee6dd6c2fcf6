#!/bin/sh
# Write bandwidth of the store's io_uring path beside fio, same disk, same run:
#   fio: io_uring, O_DIRECT, registered buffers, 1 MiB sequential writes of 1 GiB,
#        iodepth 2 and 4, fdatasync every 64 writes and at the end;
#   write_bandwidth_bench (segment_writer and the bare io_uring pattern, same sizes);
#   fio again, so that the disk's drift during the run shows.
# Prints MB/s (10^6 bytes/s) and the ratios to fio at the same depth.
# Usage: bench/storage/fio_compare.sh BUILD_DIR [DIR]   (DIR default /var/tmp: a real disk)
set -eu
build=${1:?usage: $0 BUILD_DIR [DIR]}
dir=${2:-/var/tmp}
command -v fio >/dev/null || { echo "fio is missing (scripts/bootstrap installs it)"; exit 1; }
out=$(mktemp -d "$dir/sluice-fio-XXXXXX")
trap 'rm -rf "$out"' EXIT

fio_bw() { # depth -> MB/s
    fio --name=seq --directory="$out" --filename=fio.dat --ioengine=io_uring --fixedbufs=1 \
        --direct=1 --rw=write --bs=1M --size=1G --iodepth="$1" --fdatasync=64 --end_fsync=1 \
        --output-format=json 2>/dev/null |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"] / 1e6))'
    rm -f "$out/fio.dat"
}

fio2a=$(fio_bw 2); fio4a=$(fio_bw 4)
SLUICE_BENCH_DIR="$out" "$build/bench/write_bandwidth_bench" \
    --benchmark_out="$out/bw.json" --benchmark_out_format=json >/dev/null
fio2b=$(fio_bw 2); fio4b=$(fio_bw 4)

python3 - "$out/bw.json" "$fio2a" "$fio4a" "$fio2b" "$fio4b" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
fio2a, fio4a, fio2b, fio4b = map(float, sys.argv[2:6])
fio2, fio4 = (fio2a + fio2b) / 2, (fio4a + fio4b) / 2
print(f"fio io_uring O_DIRECT 1 MiB, depth 2: {fio2a:.1f} then {fio2b:.1f} MB/s (mean {fio2:.1f})")
print(f"fio io_uring O_DIRECT 1 MiB, depth 4: {fio4a:.1f} then {fio4b:.1f} MB/s (mean {fio4:.1f})")
for b in res["benchmarks"]:
    mbs = b["bytes_per_second"] / 1e6
    name = b["name"].replace("/iterations:3/real_time", "")
    depth = 4 if "depth:4" in name or "buffers:4" in name else 2
    ref = fio4 if depth == 4 else fio2
    print(f"{name}: {mbs:.1f} MB/s = {mbs / ref:.2f}x fio depth {depth}")
PY

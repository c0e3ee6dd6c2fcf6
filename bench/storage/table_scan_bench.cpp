// Reading the store back: an `events` table of 1M seed-shaped rows (half with an
// event_id), written once by segment_writer (zstd 1, 16384-row blocks) under
// $SLUICE_BENCH_DIR (default /var/tmp), then
//   bm_scan_full        scan_table over every row: read, verify checksums, decompress,
//                       decode every column (raw rebuilt from its skeleton)
//   bm_scan_range       the same for a 1% time range: blocks outside are skipped by
//                       their header, closed segments by their footer
//   bm_scan_identities  scan_event_identities: decode + XXH3-128 per row (dedup rebuild)
//   bm_export           export_table to a file as JSON Lines (0) / CSV (1) / Parquet (2),
//                       on one TBB thread or all cores
// Items are rows delivered; bytes are the rows' raw JSON bytes; rates are per real
// second (blocks are decoded on TBB threads; bm_scan_full/threads:1 limits TBB to one,
// threads:0 lets it use every core). The files stay in the page cache after the first
// pass, so this measures CPU, not the disk.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include "bench/storage/events_table.h"
#include "storage/export.h"
#include "storage/schema.h"
#include "storage/table_reader.h"

namespace {

using namespace sluice::storage;
namespace ev = events_col;

constexpr size_t rows_total = 1'000'000;

sluice::bench::events_table& fixture() {
    static sluice::bench::events_table f(rows_total, "scan");
    return f;
}

void bm_scan_full(benchmark::State& state) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    // The scan decodes blocks on TBB threads: 1 thread, or all cores.
    tbb::global_control threads(tbb::global_control::max_allowed_parallelism,
                                state.range(0) ? size_t(state.range(0))
                                               : size_t(tbb::info::default_concurrency()));
    uint64_t rows = 0, bytes = 0;
    for (auto _ : state) {
        auto r = scan_table(f.dir, "events", INT64_MIN, INT64_MAX, [&](const column_batch& b) {
            rows += b.rows();
            bytes += b.col(ev::raw).arena_used;
        });
        if (!r) return state.SkipWithError(r.err().message.c_str());
    }
    state.SetItemsProcessed(int64_t(rows));
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["rows"] = double(rows) / double(state.iterations());
}

void bm_scan_range(benchmark::State& state) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    const int64_t span = (f.max_ms - f.min_ms) / 100;
    const int64_t from = f.min_ms + 40 * span;
    uint64_t rows = 0, skipped = 0, read = 0;
    for (auto _ : state) {
        auto r = scan_table(f.dir, "events", from, from + span,
                            [&](const column_batch& b) { rows += b.rows(); });
        if (!r) return state.SkipWithError(r.err().message.c_str());
        skipped += r->blocks_skipped;
        read += r->blocks_read;
    }
    state.SetItemsProcessed(int64_t(rows));
    state.counters["blocks_read"] = double(read) / double(state.iterations());
    state.counters["blocks_skipped"] = double(skipped) / double(state.iterations());
}

void bm_scan_identities(benchmark::State& state) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    uint64_t rows = 0, x = 0;
    for (auto _ : state) {
        auto r = scan_event_identities(f.dir, INT64_MIN, INT64_MAX,
                                       [&](std::span<const identity_row> ids) {
                                           rows += ids.size();
                                           for (const auto& i : ids) x ^= i.id.lo;
                                       });
        if (!r) return state.SkipWithError(r.err().message.c_str());
    }
    benchmark::DoNotOptimize(x);
    state.SetItemsProcessed(int64_t(rows));
}

void bm_export(benchmark::State& state) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    tbb::global_control threads(tbb::global_control::max_allowed_parallelism,
                                state.range(1) ? size_t(state.range(1))
                                               : size_t(tbb::info::default_concurrency()));
    export_options o;
    o.format = export_format(state.range(0));
    const std::string out = f.dir + "/export.out";
    uint64_t rows = 0, bytes = 0;
    for (auto _ : state) {
        auto r = export_table_to_file(f.dir, "events", o, out);
        if (!r) return state.SkipWithError(r.err().message.c_str());
        rows += r->rows;
        bytes += r->bytes;
    }
    std::filesystem::remove(out);
    state.SetItemsProcessed(int64_t(rows));
    state.counters["file_bytes_per_row"] = double(bytes) / double(rows);
    state.SetLabel(o.format == export_format::jsonl ? "jsonl"
                   : o.format == export_format::csv ? "csv"
                                                    : "parquet");
}

// Real time: the scans run on TBB threads besides the benchmark's.
BENCHMARK(bm_scan_full)->ArgName("threads")->Arg(1)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_scan_range)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_scan_identities)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_export)->ArgNames({"format", "threads"})->ArgsProduct({{0, 1, 2}, {1, 0}})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();

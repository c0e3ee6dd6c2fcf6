// Restart: reloading the dedup filters from the events table (processing/restore.h).
// An `events` table of 1M seed-shaped rows (half with an event_id; zstd 1, 16384-row
// blocks) is written once under $SLUICE_BENCH_DIR (default /var/tmp); then, into fresh
// filters of the daemon's default budget (256 MiB over the workers):
//   bm_reload/single  scan_event_identities, then check_and_insert() per identity (the
//                     reload as it was)
//   bm_reload/burst   reload_dedup(): a block's identities per worker through
//                     check_and_insert_burst()
//   bm_scan_only      scan_event_identities alone (decode + XXH3-128), the floor
//   bm_insert/single, bm_insert/burst
//                     the inserts alone: the same identities, read into memory first,
//                     per identity or per block and worker through the burst call
// Items are identities. The reloads' items/s are per real second (blocks decode on TBB
// threads); `process_cpu_ms` is the CPU time of all the process's threads per reload,
// which a loaded machine distorts less. Filters are built (mapped and touched) and
// unmapped outside the timed part. Every run must load every identity and leave as many
// entries tracked.
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/storage/events_table.h"
#include "processing/identity.h"
#include "processing/restore.h"
#include "storage/schema.h"
#include "storage/table_reader.h"

namespace {

using namespace sluice;
namespace ev = storage::events_col;

constexpr size_t rows_total = 1'000'000;
constexpr uint64_t budget = uint64_t(256) << 20;
constexpr int64_t horizon_ms = 24 * 60 * 60 * 1000; // every row inside it

bench::events_table& fixture() {
    static bench::events_table f(rows_total, "reload");
    return f;
}

double process_cpu_ms() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

std::vector<std::unique_ptr<processing::dedup_filter>> make_filters(uint32_t workers) {
    std::vector<std::unique_ptr<processing::dedup_filter>> out;
    for (uint32_t w = 0; w < workers; ++w)
        out.push_back(std::make_unique<processing::dedup_filter>(budget / workers, horizon_ms));
    return out;
}

void bm_reload(benchmark::State& state, bool burst) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    const uint32_t workers = uint32_t(state.range(0));
    const int64_t cutoff = f.max_ms - horizon_ms;
    uint64_t ids = 0, tracked = 0;
    double cpu_ms = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto filters = make_filters(workers);
        std::vector<processing::dedup_filter*> ptrs;
        for (auto& p : filters)
            ptrs.push_back(p.get());
        state.ResumeTiming();
        const double cpu_start = process_cpu_ms();
        uint64_t n = 0;
        if (burst) {
            auto r = processing::reload_dedup(f.dir, cutoff, f.max_ms, ptrs);
            if (!r) return state.SkipWithError(r.err().message.c_str());
            n = *r;
        } else {
            auto r = storage::scan_event_identities(
                f.dir, cutoff, INT64_MAX, [&](std::span<const storage::identity_row> rows) {
                    for (const auto& row : rows) {
                        const processing::identity id{row.id.hi, row.id.lo};
                        (void)ptrs[processing::owner_worker(id, workers)]->check_and_insert(
                            id, row.event_time_ms, f.max_ms);
                    }
                    n += rows.size();
                });
            if (!r) return state.SkipWithError(r.err().message.c_str());
        }
        cpu_ms += process_cpu_ms() - cpu_start;
        state.PauseTiming();
        tracked = 0;
        for (auto* p : ptrs)
            tracked += p->tracked();
        filters.clear(); // unmapped outside the timed part
        state.ResumeTiming();
        if (n != rows_total || tracked != rows_total)
            return state.SkipWithError("not every identity was loaded");
        ids += n;
    }
    state.SetItemsProcessed(int64_t(ids));
    state.counters["tracked"] = double(tracked);
    state.counters["process_cpu_ms"] = cpu_ms / double(state.iterations());
}

// The identities of the table, block by block, in memory.
const std::vector<std::vector<storage::identity_row>>& blocks() {
    static std::vector<std::vector<storage::identity_row>> b;
    if (b.empty()) {
        auto& f = fixture();
        (void)storage::scan_event_identities(f.dir, INT64_MIN, INT64_MAX,
                                             [&](std::span<const storage::identity_row> rows) {
                                                 b.emplace_back(rows.begin(), rows.end());
                                             });
    }
    return b;
}

void bm_insert(benchmark::State& state, bool burst) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    const auto& bl = blocks();
    const uint32_t workers = uint32_t(state.range(0));
    std::vector<std::vector<processing::dedup_request>> per_worker(workers);
    std::vector<processing::dedup_verdict> verdicts;
    uint64_t ids = 0, tracked = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto filters = make_filters(workers);
        state.ResumeTiming();
        for (const auto& rows : bl) {
            if (burst) {
                // As reload_dedup does it.
                for (auto& v : per_worker)
                    v.clear();
                for (const auto& row : rows) {
                    const processing::identity id{row.id.hi, row.id.lo};
                    per_worker[processing::owner_worker(id, workers)].push_back(
                        {id, row.event_time_ms, f.max_ms});
                }
                for (uint32_t w = 0; w < workers; ++w) {
                    verdicts.resize(per_worker[w].size());
                    filters[w]->check_and_insert_burst(
                        per_worker[w].data(), uint32_t(per_worker[w].size()), verdicts.data());
                }
            } else {
                for (const auto& row : rows) {
                    const processing::identity id{row.id.hi, row.id.lo};
                    (void)filters[processing::owner_worker(id, workers)]->check_and_insert(
                        id, row.event_time_ms, f.max_ms);
                }
            }
            ids += rows.size();
        }
        state.PauseTiming();
        tracked = 0;
        for (auto& p : filters)
            tracked += p->tracked();
        filters.clear();
        state.ResumeTiming();
        if (tracked != rows_total) return state.SkipWithError("not every identity was loaded");
    }
    state.SetItemsProcessed(int64_t(ids));
}

void bm_scan_only(benchmark::State& state) {
    auto& f = fixture();
    if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
    uint64_t ids = 0, x = 0;
    for (auto _ : state) {
        auto r = storage::scan_event_identities(f.dir, f.max_ms - horizon_ms, INT64_MAX,
                                                [&](std::span<const storage::identity_row> rows) {
                                                    for (const auto& i : rows)
                                                        x ^= i.id.lo;
                                                    ids += rows.size();
                                                });
        if (!r) return state.SkipWithError(r.err().message.c_str());
    }
    benchmark::DoNotOptimize(x);
    state.SetItemsProcessed(int64_t(ids));
}

BENCHMARK_CAPTURE(bm_reload, single, false)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_reload, burst, true)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_scan_only)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_insert, single, false)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_insert, burst, true)
    ->ArgName("workers")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();

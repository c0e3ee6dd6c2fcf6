// dedup_filter::check_and_insert() in steady state with N identities inside the horizon.
//
// One event per millisecond of event time and a horizon of N ms keep N identities live;
// the budget is N / 0.9 slots of 16 bytes (90% live load, 17.8 bytes per identity), and
// the filter must hold it without shortening the horizon (the run fails if it does).
// Expired slots are reused in place; reclaim_some() runs once per 512 calls, as the
// worker's tick does (once per 16 bursts of 32). The `reclaimed` counter says how many
// slots the runs freed that way. Items are check_and_insert calls; each includes ~2 ns
// of splitmix64 to make the identity.
//
// Each benchmark runs one event at a time (check_and_insert) and as bursts of 64
// (check_and_insert_burst, `_burst`), on a table of each page kind (second argument:
// 0 normal 4 KB pages, 1 transparent huge pages, the default; `thp_MiB` says how much
// of the process's memory the kernel backed with transparent huge pages while the table
// was built).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "bench/seed_events.h"
#include "processing/dedup_filter.h"

namespace {

using sluice::processing::dedup_filter;
using sluice::processing::dedup_pages;
using sluice::processing::dedup_request;
using sluice::processing::dedup_verdict;
using sluice::processing::identity;

constexpr size_t burst = 64;

identity identity_of(uint64_t i) noexcept {
    uint64_t s = i * 0x2545f4914f6cdd1dULL;
    identity id{sluice::bench::splitmix64(s), sluice::bench::splitmix64(s)};
    if (id.hi == 0 && id.lo == 0) id.lo = 1; // as processing::identity does
    return id;
}

// AnonHugePages of this process, in kB.
uint64_t anon_huge_kb() {
    std::ifstream in("/proc/self/smaps_rollup");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("AnonHugePages:", 0) == 0) return std::stoull(line.substr(14));
    return 0;
}

// A filter shared by every run at the same N and page kind, so that the 10M prefill is
// paid once, not once per iteration-count probe and repetition. Event i has time i ms.
struct fixture {
    std::unique_ptr<dedup_filter> filter;
    uint64_t tracked_live; // N
    uint64_t next = 0;     // the next new event
    uint64_t thp_kb = 0;

    fixture(uint64_t n, dedup_pages pages) : tracked_live(n) {
        uint64_t thp_before = anon_huge_kb();
        filter = std::make_unique<dedup_filter>(n * 16 * 10 / 9, int64_t(n), pages);
        for (; next < n; ++next)
            (void)filter->check_and_insert(identity_of(next), int64_t(next), int64_t(next) - 1);
        thp_kb = anon_huge_kb() - thp_before;
    }
};

fixture& fixture_for(const benchmark::State& state) {
    static std::map<std::pair<uint64_t, int64_t>, std::unique_ptr<fixture>> fixtures;
    auto& f = fixtures[{uint64_t(state.range(0)), state.range(1)}];
    if (!f) f = std::make_unique<fixture>(uint64_t(state.range(0)), dedup_pages(state.range(1)));
    return *f;
}

void report(benchmark::State& state, const fixture& f, uint64_t calls, uint64_t wrong,
            uint64_t reclaimed) {
    state.SetItemsProcessed(int64_t(calls));
    state.counters["bytes_per_id"] = double(f.filter->memory_bytes()) / double(f.tracked_live);
    state.counters["table_MiB"] = double(f.filter->memory_bytes()) / (1 << 20);
    state.counters["reclaimed"] = double(reclaimed);
    state.counters["thp_MiB"] = double(f.thp_kb) / 1024;
    if (wrong != 0 || f.filter->horizon_cuts() != 0)
        state.SkipWithError("unexpected verdict or forced horizon: the bench is not measuring "
                            "what it claims");
}

// New identities: the common case, every event accepted.
void bm_dedup_insert(benchmark::State& state) {
    fixture& f = fixture_for(state);
    uint64_t calls = 0, wrong = 0, reclaimed = 0;
    for (auto _ : state) {
        for (size_t k = 0; k < burst; ++k, ++f.next) {
            auto v = f.filter->check_and_insert(identity_of(f.next), int64_t(f.next),
                                                int64_t(f.next) - 1);
            wrong += v != dedup_verdict::accepted;
        }
        calls += burst;
        if (calls % 512 == 0) {
            uint64_t before = f.filter->tracked();
            f.filter->reclaim_some(int64_t(f.next) - 1);
            reclaimed += before - f.filter->tracked();
        }
    }
    report(state, f, calls, wrong, reclaimed);
}

// Re-sent identities from anywhere inside the horizon: random probes, every one a
// duplicate.
void bm_dedup_duplicate(benchmark::State& state) {
    fixture& f = fixture_for(state);
    const uint64_t n = f.tracked_live;
    const int64_t max_time = int64_t(f.next) - 1;
    uint64_t rng = 7;
    uint64_t calls = 0, wrong = 0;
    for (auto _ : state) {
        for (size_t k = 0; k < burst; ++k) {
            uint64_t j = f.next - 1 - sluice::bench::splitmix64(rng) % (n - 1);
            auto v = f.filter->check_and_insert(identity_of(j), int64_t(j), max_time);
            wrong += v != dedup_verdict::duplicate;
        }
        calls += burst;
    }
    report(state, f, calls, wrong, 0);
}

// The same as bm_dedup_insert, in bursts.
void bm_dedup_insert_burst(benchmark::State& state) {
    fixture& f = fixture_for(state);
    dedup_request req[burst];
    dedup_verdict verdicts[burst];
    uint64_t calls = 0, wrong = 0, reclaimed = 0;
    for (auto _ : state) {
        for (size_t k = 0; k < burst; ++k, ++f.next)
            req[k] = {identity_of(f.next), int64_t(f.next), int64_t(f.next) - 1};
        f.filter->check_and_insert_burst(req, burst, verdicts);
        for (size_t k = 0; k < burst; ++k) wrong += verdicts[k] != dedup_verdict::accepted;
        calls += burst;
        if (calls % 512 == 0) {
            uint64_t before = f.filter->tracked();
            f.filter->reclaim_some(int64_t(f.next) - 1);
            reclaimed += before - f.filter->tracked();
        }
    }
    report(state, f, calls, wrong, reclaimed);
}

// The same as bm_dedup_duplicate, in bursts.
void bm_dedup_duplicate_burst(benchmark::State& state) {
    fixture& f = fixture_for(state);
    const uint64_t n = f.tracked_live;
    const int64_t max_time = int64_t(f.next) - 1;
    dedup_request req[burst];
    dedup_verdict verdicts[burst];
    uint64_t rng = 7;
    uint64_t calls = 0, wrong = 0;
    for (auto _ : state) {
        for (size_t k = 0; k < burst; ++k) {
            uint64_t j = f.next - 1 - sluice::bench::splitmix64(rng) % (n - 1);
            req[k] = {identity_of(j), int64_t(j), max_time};
        }
        f.filter->check_and_insert_burst(req, burst, verdicts);
        for (size_t k = 0; k < burst; ++k) wrong += verdicts[k] != dedup_verdict::duplicate;
        calls += burst;
    }
    report(state, f, calls, wrong, 0);
}

void sizes_and_pages(benchmark::internal::Benchmark* b) {
    for (int64_t n : {1'000'000, 10'000'000})
        for (int64_t pages : {0, 1}) b->Args({n, pages});
}

BENCHMARK(bm_dedup_insert)->Apply(sizes_and_pages);
BENCHMARK(bm_dedup_insert_burst)->Apply(sizes_and_pages);
BENCHMARK(bm_dedup_duplicate)->Apply(sizes_and_pages);
BENCHMARK(bm_dedup_duplicate_burst)->Apply(sizes_and_pages);

} // namespace

BENCHMARK_MAIN();

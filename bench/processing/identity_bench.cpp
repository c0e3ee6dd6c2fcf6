// Event identities alone: XXH3-128 of a seed-shaped event's bytes (the identity when
// there is no event_id), and of a 36-character event_id. Read next to event_parse_bench,
// whose parse includes the same hash: the difference is what parsing costs.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "processing/identity.h"

namespace {

constexpr size_t pool_events = 4096;
constexpr size_t burst = sluice::limits::ring_burst_max;

void bm_identity_of_bytes(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events);
    std::vector<std::string_view> raws;
    for (const auto& e : events) raws.push_back(e.json);
    size_t next = 0;
    uint64_t bytes = 0;
    uint64_t hashed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            auto id = sluice::processing::identity_of_bytes(raws[next]);
            benchmark::DoNotOptimize(id);
            bytes += raws[next].size();
            next = (next + 1) % pool_events;
        }
        hashed += burst;
    }
    state.SetItemsProcessed(int64_t(hashed));
    state.SetBytesProcessed(int64_t(bytes));
    state.counters["event_bytes_mean"] = sluice::bench::mean_bytes(events);
}

void bm_identity_of_event_id(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events, true);
    std::vector<std::string> ids;
    for (const auto& e : events) ids.push_back(e.json.substr(13, 36)); // {"event_id":"<36>"
    if (ids[0].size() != 36 || ids[0][8] != '-') {
        state.SkipWithError("event_id not where the bench expects it");
        return;
    }
    size_t next = 0;
    uint64_t hashed = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            auto id = sluice::processing::identity_of_event_id(ids[next]);
            benchmark::DoNotOptimize(id);
            next = (next + 1) % pool_events;
        }
        hashed += burst;
    }
    state.SetItemsProcessed(int64_t(hashed));
    state.SetBytesProcessed(int64_t(hashed * 36));
}

BENCHMARK(bm_identity_of_bytes);
BENCHMARK(bm_identity_of_event_id);

} // namespace

BENCHMARK_MAIN();

// window_state::add() for the reference query (tumbling 1 min, group by page, count)
// with 500 pages drawn Zipf(1), sized as processing::worker sizes it. Items are events.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/limits.h"
#include "bench/seed_events.h"
#include "processing/window.h"

namespace {

using sluice::processing::window_spec;
using sluice::processing::window_state;

constexpr size_t pool_events = 65536;
constexpr size_t burst = sluice::limits::ring_burst_max;
constexpr uint32_t cells_max = 1u << 16; // processing::worker_config's defaults
constexpr uint32_t keys_max = 1u << 16;
constexpr size_t key_bytes_max = 8u << 20;
constexpr int64_t watermark_delay_ms = sluice::limits::watermark_delay_ms_default;

// Adds only: the pool spans ~8 minutes of event time, so about 8 x 500 cells stay open
// and every add after the first lap finds its cell.
void bm_window_add(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events);
    window_state windows(window_spec{}, cells_max, keys_max, key_bytes_max);
    size_t next = 0;
    uint64_t added = 0, refused = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            const auto& e = events[next];
            next = (next + 1) % pool_events;
            refused += !windows.add(e.time_ms, e.page);
        }
        added += burst;
    }
    state.SetItemsProcessed(int64_t(added));
    state.counters["open_cells"] = windows.open_cells();
    if (refused != 0) state.SkipWithError("window_state refused an add: state sized too small");
}

// Adds with event time moving forward (the pool's pages, its time rising 7.5 ms per event
// on average for ever) and close_until(max time - 10 min) after each burst, as the worker
// does when the watermark moves: the steady state of the reference query.
void bm_window_add_and_close(benchmark::State& state) {
    const auto events = sluice::bench::make_seed_events(pool_events);
    const int64_t lap_ms = events.back().time_ms - events.front().time_ms + 8;
    window_state windows(window_spec{}, cells_max, keys_max, key_bytes_max);
    size_t next = 0;
    int64_t lap = 0, max_time = INT64_MIN;
    uint64_t added = 0, refused = 0, closed = 0, counted = 0;
    for (auto _ : state) {
        for (size_t i = 0; i < burst; ++i) {
            const auto& e = events[next];
            int64_t t = e.time_ms + lap * lap_ms;
            if (++next == pool_events) next = 0, ++lap;
            max_time = t > max_time ? t : max_time;
            refused += !windows.add(t, e.page);
        }
        added += burst;
        closed += windows.close_until(max_time - watermark_delay_ms,
                                      [&](int64_t, std::string_view, uint64_t count) {
                                          counted += count;
                                      });
    }
    state.SetItemsProcessed(int64_t(added));
    state.counters["open_cells"] = windows.open_cells();
    state.counters["cells_closed"] = double(closed);
    if (refused != 0) state.SkipWithError("window_state refused an add: state sized too small");
    benchmark::DoNotOptimize(counted);
}

BENCHMARK(bm_window_add);
BENCHMARK(bm_window_add_and_close);

} // namespace

BENCHMARK_MAIN();

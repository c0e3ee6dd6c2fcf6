// What end-to-end latency recording costs a worker per event: latency_histogram::record()
// (window-visible, once per event) and pending_latency::add_row() + complete() (durable,
// once per stored row), beside a plain relaxed counter bump (what every counter costs).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "base/latency_histogram.h"

namespace {

// Latencies in TSC ticks around 100 us at 3 GHz, log-normally spread, as a worker sees.
std::vector<uint64_t> latencies() {
    std::mt19937_64 rng(5);
    std::lognormal_distribution<double> d(std::log(300'000.0), 1.0);
    std::vector<uint64_t> v(1 << 16);
    for (auto& x : v)
        x = uint64_t(d(rng));
    return v;
}

void BM_CounterBump(benchmark::State& state) {
    std::atomic<uint64_t> c{0};
    for (auto _ : state) {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        benchmark::DoNotOptimize(c);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterBump);

void BM_HistogramRecord(benchmark::State& state) {
    auto values = latencies();
    sluice::latency_histogram h;
    size_t i = 0;
    for (auto _ : state) {
        h.record(values[i++ & (values.size() - 1)]);
    }
    state.SetItemsProcessed(state.iterations());
    if (h.snapshot().count() != uint64_t(state.iterations())) state.SkipWithError("lost records");
}
BENCHMARK(BM_HistogramRecord);

// Rows arrive in RX bursts of 32 sharing a stamp; every 4096 rows an fsync completes.
void BM_PendingDurable(benchmark::State& state) {
    sluice::pending_latency p(1u << 16);
    sluice::latency_histogram h;
    uint64_t rows = 0, stamp = 1'000'000;
    for (auto _ : state) {
        p.add_row(stamp);
        if ((++rows & 31) == 0) stamp += 10'000;
        if ((rows & 4095) == 0) p.complete(rows, stamp + 300'000, h);
    }
    p.complete(rows, stamp + 300'000, h);
    state.SetItemsProcessed(state.iterations());
    if (h.snapshot().count() != rows) state.SkipWithError("rows not measured");
}
BENCHMARK(BM_PendingDurable);

} // namespace

BENCHMARK_MAIN();
